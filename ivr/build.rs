//! Embeds the default zh-CN prompt set (`prompts/zh-CN/**/*.wav`) so the binary can play it
//! without any file next to it; a deployment may point `ivr.prompts_dir` at its own set.

use std::fmt::Write as _;
use std::path::Path;

fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("prompt directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "wav") {
            let rel = p.strip_prefix(base).expect("under base");
            out.push(rel.with_extension("").to_string_lossy().replace('\\', "/"));
        }
    }
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir");
    let base = Path::new(&manifest).join("prompts").join("zh-CN");
    println!("cargo:rerun-if-changed={}", base.display());
    let mut names = Vec::new();
    walk(&base, &base, &mut names);
    let mut code = String::from("/// The default zh-CN prompt files: (prompt name, WAV bytes).\n");
    code.push_str("pub const DEFAULT_ZH_CN_FILES: &[(&str, &[u8])] = &[\n");
    for n in &names {
        let path = base.join(format!("{n}.wav"));
        writeln!(
            code,
            "    ({n:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("out dir")).join("default_prompts.rs");
    std::fs::write(out, code).expect("write default_prompts.rs");
}
