//! Entry point for the `ivr_flow` fuzz target (`fuzz/`, issue 12): a flow file (TOML) through
//! the parser and validator, with and without the prompt catalog, and the accessors the
//! runtime calls on a valid flow. Malformed files must be refused with a `FlowError`.

use hotline_core::UnixMillis;

use super::parse_flow;
use crate::prompts::PromptCatalog;

pub fn flow_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_flow(text, "fuzz.toml", Some(&PromptCatalog::default_zh_cn()));
    if let Ok(flow) = parse_flow(text, "fuzz.toml", None) {
        let _ = (flow.name(), flow.queues());
        // A valid flow's start node exists (the session begins there).
        assert!(flow.node(flow.start()).is_some(), "start node missing");
        for node in flow.nodes() {
            let _ = (node.edges(), node.prompts());
            for (_, target) in node.edges() {
                assert!(flow.node(target).is_some(), "edge to a missing node");
            }
        }
        for t in [0, 1_764_000_000_000, UnixMillis::MAX / 2] {
            let _ = flow.hours().is_open(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fuzz_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    const TARGETS: &[hotline_testkit::mutate::Target] = &[("ivr_flow", flow_file)];

    /// Replays the committed seed corpus (and anything the fuzzer added to it) on stable, so
    /// a regression shows up in `cargo test` without the fuzz toolchain.
    #[test]
    fn fuzz_corpus_replays() {
        hotline_testkit::mutate::replay_corpus(&fuzz_dir(), TARGETS);
    }

    /// The stable fuzz driver: mutated corpus inputs for `HOTLINE_FUZZ_SECS` seconds per
    /// target (docs/robustness.md). A crashing input is saved to `fuzz/artifacts/<target>/`.
    #[test]
    #[ignore = "long-running: the stable fuzz driver, run with --ignored"]
    fn fuzz_random_mutations() {
        hotline_testkit::mutate::fuzz_targets(&fuzz_dir(), TARGETS);
    }
}
