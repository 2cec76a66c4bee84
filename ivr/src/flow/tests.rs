use super::*;

const MINI: &str = r#"
name = "mini"
start = "menu"

[[node]]
name = "menu"
type = "menu"
prompts = ["msg/main_menu"]
on_failure = "bye"
options = { "1" = "bye" }

[[node]]
name = "bye"
type = "hangup"
prompts = ["msg/goodbye"]
"#;

fn catalog() -> PromptCatalog {
    PromptCatalog::default_zh_cn()
}

fn problems(text: &str) -> Vec<Problem> {
    match parse_flow(text, "t.toml", Some(&catalog())) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().to_vec(),
    }
}

#[test]
fn default_flow_is_valid() {
    let flow = default_flow();
    assert_eq!(flow.name(), "default");
    assert_eq!(flow.start(), "welcome");
    assert_eq!(flow.queues(), ["complaints", "hotline"]);
    assert_eq!(flow.hours(), &ServiceHours::default());
    let Some(Node::Menu { options, .. }) = flow.node("main_menu") else {
        panic!("main_menu is a menu");
    };
    let keys: Vec<&str> = options.keys().map(String::as_str).collect();
    assert_eq!(keys, ["*", "0", "1", "2", "3", "9"]);
    // And from the file on disk, as the binary loads it.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/default.toml");
    assert_eq!(load_flow_file(&path, Some(&catalog())).unwrap(), flow);
}

#[test]
fn minimal_flow_loads() {
    let f = parse_flow(MINI, "mini.toml", Some(&catalog())).unwrap();
    assert_eq!(f.nodes().len(), 2);
    assert!(matches!(f.node("bye"), Some(Node::Hangup { .. })));
}

fn with(extra: &str) -> String {
    format!("{MINI}\n{extra}")
}

#[test]
fn validation_problems_table() {
    let node = |n: &str| Some(n.to_string());
    let cases: Vec<(String, Problem)> = vec![
        (
            MINI.replace(
                r#"options = { "1" = "bye" }"#,
                r#"options = { "1" = "nowhere" }"#,
            ),
            Problem {
                node: node("menu"),
                field: "options.\"1\"".into(),
                kind: ProblemKind::UnknownNode("nowhere".into()),
            },
        ),
        (
            MINI.replace(r#"start = "menu""#, r#"start = "begin""#),
            Problem {
                node: None,
                field: "start".into(),
                kind: ProblemKind::UnknownNode("begin".into()),
            },
        ),
        (
            with("[[node]]\nname = \"orphan\"\ntype = \"hangup\""),
            Problem {
                node: node("orphan"),
                field: "name".into(),
                kind: ProblemKind::Unreachable,
            },
        ),
        (
            MINI.replace("msg/goodbye", "msg/nope"),
            Problem {
                node: node("bye"),
                field: "prompts".into(),
                kind: ProblemKind::MissingPrompt("msg/nope".into()),
            },
        ),
        (
            MINI.replace("msg/goodbye", "../etc/passwd"),
            Problem {
                node: node("bye"),
                field: "prompts".into(),
                kind: ProblemKind::BadPromptName("../etc/passwd".into()),
            },
        ),
        (
            MINI.replace(r#"{ "1" = "bye" }"#, r#"{ "12" = "bye" }"#),
            Problem {
                node: node("menu"),
                field: "options.\"12\"".into(),
                kind: ProblemKind::BadDigit("12".into()),
            },
        ),
        (
            MINI.replace(r#"{ "1" = "bye" }"#, r#"{ "A" = "bye" }"#),
            Problem {
                node: node("menu"),
                field: "options.\"A\"".into(),
                kind: ProblemKind::BadDigit("A".into()),
            },
        ),
        (
            with("[[node]]\nname = \"bye\"\ntype = \"hangup\""),
            Problem {
                node: node("bye"),
                field: "name".into(),
                kind: ProblemKind::Duplicate("bye".into()),
            },
        ),
        (
            MINI.replace(
                "start = \"menu\"\n",
                "start = \"menu\"\n[[hours.special]]\ndate = \"2026-10-01\"\nclosed = true\n\
                 [[hours.special]]\ndate = \"2026-10-01\"\nclosed = true\n",
            ),
            Problem {
                node: None,
                field: "hours.special[1].date".into(),
                kind: ProblemKind::Duplicate("2026-10-01".into()),
            },
        ),
        (
            MINI.replace(
                "start = \"menu\"",
                "start = \"menu\"\n[hours]\nopen = \"20:00\"\nclose = \"08:00\"",
            ),
            Problem {
                node: None,
                field: "hours.open".into(),
                kind: ProblemKind::BadValue("opens at 20:00 but closes at 08:00".into()),
            },
        ),
        (
            MINI.replace(r#"{ "1" = "bye" }"#, r#"{ "1" = "say" }"#)
                + "[[node]]\nname = \"say\"\ntype = \"say\"\nwhat = \"digits\"\nvar = \"code\"\nnext = \"bye\"",
            Problem {
                node: node("say"),
                field: "var".into(),
                kind: ProblemKind::UnknownVariable("code".into()),
            },
        ),
        (
            MINI.replace(r#"{ "1" = "bye" }"#, r#"{ "1" = "c" }"#)
                + "[[node]]\nname = \"c\"\ntype = \"collect\"\nprompts = [\"ss/enter_code\"]\n\
                   var = \"code\"\nmin_digits = 5\nmax_digits = 4\nterminator = \"1\"\n\
                   next = \"bye\"\non_failure = \"bye\"",
            Problem {
                node: node("c"),
                field: "max_digits".into(),
                kind: ProblemKind::BadValue("must be between min_digits (5) and 32".into()),
            },
        ),
    ];
    for (text, want) in cases {
        let got = problems(&text);
        assert!(
            got.contains(&want),
            "want {want}\n got {got:#?}\nin\n{text}"
        );
    }
}

#[test]
fn collect_terminator_must_be_hash_or_star() {
    let text = MINI.replace(r#"{ "1" = "bye" }"#, r#"{ "1" = "c" }"#)
        + "[[node]]\nname = \"c\"\ntype = \"collect\"\nprompts = [\"ss/enter_code\"]\n\
           var = \"code\"\nmax_digits = 4\nterminator = \"1\"\nnext = \"bye\"\non_failure = \"bye\"";
    assert_eq!(
        problems(&text),
        [Problem {
            node: Some("c".into()),
            field: "terminator".into(),
            kind: ProblemKind::BadDigit("1".into()),
        }]
    );
}

#[test]
fn all_problems_reported_at_once_with_file_node_and_field() {
    let text = MINI
        .replace("msg/goodbye", "msg/nope")
        .replace(r#"{ "1" = "bye" }"#, r#"{ "1" = "bye", "x" = "gone" }"#);
    let err = parse_flow(&text, "flows/x.toml", Some(&catalog())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("flows/x.toml: invalid flow:"), "{msg}");
    assert!(
        msg.contains(r#"node "menu", field `options."x"`: bad digit "x""#),
        "{msg}"
    );
    assert!(
        msg.contains(r#"node "menu", field `options."x"`: unknown node "gone""#),
        "{msg}"
    );
    assert!(
        msg.contains(r#"node "bye", field `prompts`: missing prompt "msg/nope""#),
        "{msg}"
    );
    assert_eq!(err.problems().len(), 3);
}

#[test]
fn without_catalog_prompts_are_not_checked() {
    let text = MINI.replace("msg/goodbye", "msg/custom_recording");
    assert!(parse_flow(&text, "t.toml", None).is_ok());
    assert!(parse_flow(&text, "t.toml", Some(&catalog())).is_err());
}

#[test]
fn syntax_and_schema_errors_name_the_file() {
    for (text, needle) in [
        ("name = ", "t.toml: "),
        (
            &*MINI.replace("type = \"hangup\"", "type = \"dance\""),
            "dance",
        ),
        (
            &*MINI.replace("on_failure = \"bye\"", "on_failure = \"bye\"\ntimeout = 3"),
            "timeout",
        ),
    ] {
        let err = parse_flow(text, "t.toml", None).unwrap_err();
        assert!(matches!(err, FlowError::Parse { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("t.toml: ") && msg.contains(needle), "{msg}");
    }
    let err = load_flow_file(Path::new("/nonexistent/flow.toml"), None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/flow.toml: cannot read flow")
    );
}
