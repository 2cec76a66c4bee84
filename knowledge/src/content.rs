//! The built-in articles (`knowledge/content/*.md`), embedded at build time.

include!(concat!(env!("OUT_DIR"), "/content.rs"));

/// The built-in articles as `(file name, text)` pairs, for [`crate::portable::parse_markdown_set`].
pub fn builtin_files() -> Vec<(String, String)> {
    BUILTIN
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}
