//! Embeds `content/*.md` (the built-in articles) so that `hotline init` can load them
//! without the source tree.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read at run time, not with `env!`: cargo may reuse this compiled script for another
    // checkout of the same workspace (a shared target directory), whose sources are elsewhere.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("content");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("knowledge/content exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("md"))
        .collect();
    files.sort();
    let mut out = String::from(
        "/// Built-in articles: (file name, text).\npub static BUILTIN: &[(&str, &str)] = &[\n",
    );
    for p in &files {
        println!("cargo::rerun-if-changed={}", p.display());
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 file name");
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            p.display().to_string()
        )
        .expect("write");
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("content.rs");
    std::fs::write(target, out).expect("write content.rs");
}
