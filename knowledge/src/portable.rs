//! Import and export: a folder of Markdown files with TOML front matter, and JSON.
//!
//! A Markdown file looks like this (`+++` fences, TOML between them):
//! ```text
//! +++
//! title = "保证金金额是多少"
//! category = "保证金"
//! tags = ["个人", "企业"]
//! keywords = ["押金", "2000元"]
//! status = "published"        # draft | published | archived; default published
//! valid_from = 2026-12-01     # optional; a date (Beijing time) or unix milliseconds
//! valid_to = 2026-12-31       # optional; a date is inclusive (valid through that day)
//! slug = "deposit-amount"     # optional; default: the file name without `.md`
//! +++
//! Markdown body …
//! ```
//! JSON is `{"format": "hotline-kb", "version": 1, "articles": [ … ]}` with the same
//! fields per article (`slug` and `body` required; dates as above).
//!
//! Parsing checks everything first and reports every problem with its file and field;
//! only a clean set is handed to the store, which applies it in one transaction.

use std::collections::HashMap;
use std::path::Path;

use hotline_core::UnixMillis;
use serde_json::{Map, Value};

use crate::error::{ImportProblem, KnowledgeError, Result};
use crate::model::{Article, ArticleInput, ArticleStatus};

/// Tianjin is on Beijing time, UTC+8 all year.
const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

const FIELDS: &[&str] = &[
    "slug",
    "title",
    "body",
    "category",
    "tags",
    "keywords",
    "status",
    "valid_from",
    "valid_to",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` → the start of that day in Beijing time, as unix milliseconds.
pub fn beijing_date_to_millis(date: &str) -> Option<UnixMillis> {
    let mut it = date.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let max_d = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=max_d).contains(&d) || !(1900..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY_MS - BEIJING_OFFSET_MS)
}

/// The Beijing date of an instant, `YYYY-MM-DD`.
pub fn millis_to_beijing_date(ms: UnixMillis) -> String {
    let (y, m, d) = civil_from_days((ms + BEIJING_OFFSET_MS).div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

fn is_beijing_midnight(ms: UnixMillis) -> bool {
    (ms + BEIJING_OFFSET_MS).rem_euclid(DAY_MS) == 0
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// Collects problems for one file or entry.
struct Checker<'a> {
    file: &'a str,
    prefix: &'a str,
    problems: &'a mut Vec<ImportProblem>,
}

impl Checker<'_> {
    fn report(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(ImportProblem {
            file: self.file.to_string(),
            field: format!("{}{field}", self.prefix),
            message: message.into(),
        });
    }

    fn string(&mut self, map: &Map<String, Value>, field: &str, required: bool) -> Option<String> {
        match map.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::String(_)) => {
                self.report(field, "must not be empty");
                None
            }
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                self.report(field, "is required");
                None
            }
            Some(_) => {
                self.report(field, "must be a string");
                None
            }
        }
    }

    fn list(&mut self, map: &Map<String, Value>, field: &str) -> Vec<String> {
        match map.get(field) {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                        _ => self.report(&format!("{field}[{i}]"), "must be a non-empty string"),
                    }
                }
                out
            }
            Some(_) => {
                self.report(field, "must be a list of strings");
                vec![]
            }
        }
    }

    /// A date field: unix milliseconds, or `YYYY-MM-DD` (Beijing). With `end_of_day`, a
    /// date means "through that day" and becomes the next day's midnight.
    fn instant(&mut self, map: &Map<String, Value>, field: &str, end_of_day: bool) -> Option<i64> {
        match map.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(ms) => Some(ms),
                None => {
                    self.report(field, "must be whole unix milliseconds");
                    None
                }
            },
            Some(Value::String(s)) => match beijing_date_to_millis(s) {
                Some(ms) => Some(if end_of_day { ms + DAY_MS } else { ms }),
                None => {
                    self.report(field, format!("`{s}` is not a date YYYY-MM-DD"));
                    None
                }
            },
            Some(_) => {
                self.report(field, "must be a date YYYY-MM-DD or unix milliseconds");
                None
            }
        }
    }

    fn article(
        &mut self,
        map: &Map<String, Value>,
        default_slug: Option<&str>,
    ) -> Option<ArticleInput> {
        let before = self.problems.len();
        for key in map.keys() {
            if !FIELDS.contains(&key.as_str()) {
                self.report(
                    key,
                    format!("unknown field (expected one of {})", FIELDS.join(", ")),
                );
            }
        }
        let slug = match (
            self.string(map, "slug", default_slug.is_none()),
            default_slug,
        ) {
            (Some(s), _) => Some(s),
            (None, Some(d)) => Some(d.to_string()),
            (None, None) => None,
        };
        let title = self.string(map, "title", true);
        let body = self.string(map, "body", true);
        let category = self.string(map, "category", true);
        let tags = self.list(map, "tags");
        let keywords = self.list(map, "keywords");
        let status = match self.string(map, "status", false) {
            None => Some(ArticleStatus::Published),
            Some(s) => match s.parse() {
                Ok(st) => Some(st),
                Err(_) => {
                    self.report(
                        "status",
                        format!("`{s}` is not one of draft, published, archived"),
                    );
                    None
                }
            },
        };
        let valid_from = self.instant(map, "valid_from", false);
        let valid_to = self.instant(map, "valid_to", true);
        if self.problems.len() > before {
            return None;
        }
        let input = ArticleInput {
            slug: slug?,
            title: title?,
            body: body?,
            category: category?,
            tags,
            keywords,
            status: status?,
            valid_from,
            valid_to,
        };
        if let Err(KnowledgeError::Invalid { field, message }) = input.validate() {
            self.report(&field, message);
            return None;
        }
        Some(input)
    }
}

/// Splits `+++\n<toml>\n+++\n<body>`.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let rest = text.strip_prefix("+++")?.trim_start_matches([' ', '\t']);
    let rest = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            return Some((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

/// Parses one Markdown file; problems are appended to `problems`.
pub fn parse_markdown(
    file: &str,
    text: &str,
    problems: &mut Vec<ImportProblem>,
) -> Option<ArticleInput> {
    let mut checker = Checker {
        file,
        prefix: "",
        problems,
    };
    let Some((front, body)) = split_front_matter(text) else {
        checker.report("", "no front matter: the file must start with a `+++` line, TOML, and a closing `+++` line");
        return None;
    };
    let table: toml::Table = match toml::from_str(front) {
        Ok(t) => t,
        Err(e) => {
            checker.report(
                "",
                format!("front matter is not valid TOML: {}", e.message()),
            );
            return None;
        }
    };
    let mut map: Map<String, Value> = table
        .into_iter()
        .map(|(k, v)| (k, toml_to_json(v)))
        .collect();
    if map.contains_key("body") {
        checker.report("body", "belongs below the front matter, not in it");
        return None;
    }
    map.insert("body".into(), Value::String(body.trim().to_string()));
    let stem = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(file);
    checker.article(&map, Some(stem))
}

fn check_duplicates(found: &[(String, ArticleInput)], problems: &mut Vec<ImportProblem>) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (file, a) in found {
        if let Some(first) = seen.insert(&a.slug, file) {
            problems.push(ImportProblem {
                file: file.clone(),
                field: "slug".into(),
                message: format!("`{}` is also used by {first}", a.slug),
            });
        }
    }
}

/// Parses `(file name, text)` pairs; all or nothing.
pub fn parse_markdown_set(files: &[(String, String)]) -> Result<Vec<ArticleInput>> {
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for (name, text) in files {
        if let Some(a) = parse_markdown(name, text, &mut problems) {
            found.push((name.clone(), a));
        }
    }
    check_duplicates(&found, &mut problems);
    if problems.is_empty() {
        Ok(found.into_iter().map(|(_, a)| a).collect())
    } else {
        Err(KnowledgeError::Import(problems))
    }
}

/// Reads every `*.md` file of `dir` (not recursive), sorted by name.
pub fn read_markdown_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| KnowledgeError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| KnowledgeError::io(dir, e))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") || !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| KnowledgeError::io(&path, e))?;
        files.push((name, text));
    }
    files.sort();
    Ok(files)
}

/// Parses the JSON export format; all or nothing.
pub fn parse_json(text: &str) -> Result<Vec<ArticleInput>> {
    const FILE: &str = "<json>";
    let problem = |field: &str, message: String| {
        KnowledgeError::Import(vec![ImportProblem {
            file: FILE.into(),
            field: field.into(),
            message,
        }])
    };
    let root: Value =
        serde_json::from_str(text).map_err(|e| problem("", format!("not valid JSON: {e}")))?;
    let Some(items) = root.get("articles").and_then(Value::as_array) else {
        return Err(problem("articles", "a list of articles is required".into()));
    };
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("articles[{i}].");
        let mut checker = Checker {
            file: FILE,
            prefix: &prefix,
            problems: &mut problems,
        };
        match item.as_object() {
            Some(map) => {
                if let Some(a) = checker.article(map, None) {
                    found.push((format!("articles[{i}]"), a));
                }
            }
            None => checker.report("", "must be an object"),
        }
    }
    check_duplicates(&found, &mut problems);
    if problems.is_empty() {
        Ok(found.into_iter().map(|(_, a)| a).collect())
    } else {
        Err(KnowledgeError::Import(problems))
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// One article as a Markdown file with TOML front matter (what `parse_markdown` reads).
pub fn render_markdown(a: &ArticleInput) -> String {
    let mut out = String::from("+++\n");
    out.push_str(&format!("slug = {}\n", toml_string(&a.slug)));
    out.push_str(&format!("title = {}\n", toml_string(&a.title)));
    out.push_str(&format!("category = {}\n", toml_string(&a.category)));
    out.push_str(&format!("tags = {}\n", toml_list(&a.tags)));
    out.push_str(&format!("keywords = {}\n", toml_list(&a.keywords)));
    out.push_str(&format!("status = {}\n", toml_string(a.status.as_str())));
    if let Some(ms) = a.valid_from {
        if is_beijing_midnight(ms) {
            out.push_str(&format!("valid_from = {}\n", millis_to_beijing_date(ms)));
        } else {
            out.push_str(&format!("valid_from = {ms}\n"));
        }
    }
    if let Some(ms) = a.valid_to {
        if is_beijing_midnight(ms) {
            out.push_str(&format!(
                "valid_to = {}\n",
                millis_to_beijing_date(ms - DAY_MS)
            ));
        } else {
            out.push_str(&format!("valid_to = {ms}\n"));
        }
    }
    out.push_str("+++\n\n");
    out.push_str(a.body.trim());
    out.push('\n');
    out
}

/// Every article as one JSON document (dates as unix milliseconds).
pub fn render_json(articles: &[Article]) -> Result<String> {
    let items: Vec<&ArticleInput> = articles.iter().map(|a| &a.content).collect();
    let doc = serde_json::json!({"format": "hotline-kb", "version": 1, "articles": items});
    serde_json::to_string_pretty(&doc).map_err(|e| KnowledgeError::Corrupt(e.to_string()))
}

/// Writes one `<slug>.md` per article into `dir` (created when missing).
pub fn write_markdown_dir(dir: &Path, articles: &[Article]) -> Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| KnowledgeError::io(dir, e))?;
    for a in articles {
        let path = dir.join(format!("{}.md", a.content.slug));
        std::fs::write(&path, render_markdown(&a.content))
            .map_err(|e| KnowledgeError::io(&path, e))?;
    }
    Ok(articles.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "+++\ntitle = \"保证金金额\"\ncategory = \"保证金\"\nkeywords = [\"押金\"]\nvalid_from = 2026-12-01\nvalid_to = 2026-12-31\n+++\n\n每个申请编码缴纳 2000 元。\n";

    #[test]
    fn dates_are_beijing_days() {
        let ms = beijing_date_to_millis("2026-12-01").unwrap();
        assert_eq!(ms, 1_796_054_400_000);
        assert_eq!(millis_to_beijing_date(ms), "2026-12-01");
        assert_eq!(millis_to_beijing_date(ms - 1), "2026-11-30");
        assert!(beijing_date_to_millis("2026-02-30").is_none());
        assert!(beijing_date_to_millis("2024-02-29").is_some());
    }

    #[test]
    fn markdown_round_trip() {
        let mut p = Vec::new();
        let a = parse_markdown("deposit-amount.md", GOOD, &mut p).unwrap();
        assert!(p.is_empty());
        assert_eq!(a.slug, "deposit-amount");
        assert_eq!(a.status, ArticleStatus::Published);
        assert_eq!(a.body, "每个申请编码缴纳 2000 元。");
        assert_eq!(a.valid_to.unwrap() - a.valid_from.unwrap(), 31 * DAY_MS);
        let text = render_markdown(&a);
        let b = parse_markdown("other-name.md", &text, &mut p).unwrap();
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(a, b);
    }

    #[test]
    fn problems_name_file_and_field() {
        let files = vec![
            (
                "a.md".to_string(),
                GOOD.replace("category = \"保证金\"\n", ""),
            ),
            (
                "b.md".to_string(),
                GOOD.replace("valid_to = 2026-12-31", "valid_to = \"12/31\""),
            ),
            ("c.md".to_string(), GOOD.replace("title", "titel")),
            ("d.md".to_string(), "no front matter".to_string()),
            (
                "e.md".to_string(),
                GOOD.replace("+++\n\n", "status = \"gone\"\n+++\n"),
            ),
            (
                "f.md".to_string(),
                GOOD.replace("+++\ntitle", "+++\nslug = \"a\"\ntitle"),
            ),
            (
                "g.md".to_string(),
                GOOD.replace("+++\ntitle", "+++\nslug = \"a\"\ntitle"),
            ),
        ];
        let Err(KnowledgeError::Import(p)) = parse_markdown_set(&files) else {
            panic!("expected import problems");
        };
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|x| (x.file.as_str(), x.field.as_str()))
            .collect();
        assert!(got.contains(&("a.md", "category")), "{got:?}");
        assert!(got.contains(&("b.md", "valid_to")), "{got:?}");
        assert!(got.contains(&("c.md", "titel")), "{got:?}");
        assert!(got.contains(&("c.md", "title")), "{got:?}");
        assert!(got.contains(&("d.md", "")), "{got:?}");
        assert!(got.contains(&("e.md", "status")), "{got:?}");
        assert!(got.contains(&("g.md", "slug")), "{got:?}");
    }

    #[test]
    fn json_problems_use_paths() {
        let Err(KnowledgeError::Import(p)) = parse_json(
            r#"{"articles": [{"slug": "ok", "title": "t", "body": "b", "category": "c"},
                             {"slug": "Bad", "title": "t", "body": "b", "category": "c", "tags": [1]}]}"#,
        ) else {
            panic!("expected import problems");
        };
        let fields: Vec<&str> = p.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["articles[1].tags[0]"]);
        let Err(KnowledgeError::Import(p)) = parse_json(
            r#"{"articles": [{"slug": "Bad", "title": "t", "body": "b", "category": "c"}]}"#,
        ) else {
            panic!("expected import problems");
        };
        assert_eq!(p[0].field, "articles[0].slug");
    }
}
