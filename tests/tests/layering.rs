//! The crate graph stays one-way (DESIGN.md): `hotline-core` at the bottom, the domain crates
//! above it and beside each other with no edges between them, `hotline` on top. Read from
//! `cargo metadata`, so a new dependency that breaks the rule fails here.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

const DOMAIN: [&str; 6] = [
    "hotline-sip-gateway",
    "hotline-ivr",
    "hotline-recording",
    "hotline-knowledge",
    "hotline-crm",
    "hotline-integrations",
];

/// Package → its (dependency name, kind) list, where kind is "normal", "dev" or "build".
fn workspace_deps() -> BTreeMap<String, Vec<(String, String)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
            manifest,
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| {
                    (
                        d["name"].as_str().unwrap_or_default().to_string(),
                        d["kind"].as_str().unwrap_or("normal").to_string(),
                    )
                })
                .collect();
            (p["name"].as_str().unwrap_or_default().to_string(), deps)
        })
        .collect()
}

#[test]
fn crate_graph_is_one_way() {
    let deps = workspace_deps();
    for name in DOMAIN
        .iter()
        .chain(["hotline-core", "hotline", "hotline-testkit"].iter())
    {
        assert!(
            deps.contains_key(*name),
            "workspace member {name} is missing"
        );
    }
    let ours = |pkg: &str| -> Vec<(String, String)> {
        deps[pkg]
            .iter()
            .filter(|(d, _)| d.starts_with("hotline"))
            .cloned()
            .collect()
    };
    assert!(
        ours("hotline-core").is_empty(),
        "hotline-core depends on no hotline crate"
    );
    assert!(
        ours("hotline-testkit").is_empty(),
        "hotline-testkit depends on no hotline crate"
    );
    for pkg in DOMAIN {
        for (dep, kind) in ours(pkg) {
            let allowed = dep == "hotline-core" || (kind == "dev" && dep == "hotline-testkit");
            assert!(
                allowed,
                "{pkg} depends on {dep} ({kind}): domain crates may only use hotline-core"
            );
        }
    }
    // core stays free of I/O frameworks (it must not pull tokio, sqlx or axum into engines)
    for (dep, kind) in &deps["hotline-core"] {
        if kind == "normal" {
            assert!(
                !["tokio", "sqlx", "axum"].contains(&dep.as_str()),
                "hotline-core must not depend on {dep}"
            );
        }
    }
    // nothing but the tests and bench packages sits above the binary
    for (pkg, list) in &deps {
        if pkg != "hotline-tests" && pkg != "hotline-bench" {
            assert!(
                !list.iter().any(|(d, k)| d == "hotline" && k == "normal"),
                "{pkg} depends on the binary crate"
            );
        }
    }
}
