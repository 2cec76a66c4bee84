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

    /// Replays the committed seed corpus (and anything the fuzzer added to it) on stable, so
    /// a regression shows up in `cargo test` without the fuzz toolchain.
    #[test]
    fn fuzz_corpus_replays() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        // One target here (the loop shape matches the other crates' replays).
        {
            let (target, run) = ("ivr_flow", flow_file);
            let dir = root.join(target);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let mut n = 0;
            for entry in entries {
                let path = entry.expect("corpus entry").path();
                run(&std::fs::read(&path).expect("corpus file"));
                n += 1;
            }
            assert!(n > 0, "empty corpus {}", dir.display());
        }
    }

    /// The stable fuzz driver: mutated corpus inputs for `HOTLINE_FUZZ_SECS` seconds per
    /// target (docs/robustness.md). A crashing input is saved to `fuzz/artifacts/<target>/`.
    #[test]
    #[ignore = "long-running: the stable fuzz driver, run with --ignored"]
    fn fuzz_random_mutations() {
        use hotline_testkit::mutate;
        let (budget, seed) = mutate::budget_from_env();
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        {
            let (target, run) = ("ivr_flow", flow_file as fn(&[u8]));
            let corpus = mutate::load_corpus(&fuzz.join("corpus").join(target));
            let artifacts = fuzz.join("artifacts").join(target);
            let mut target_fn = run;
            let n = mutate::run(&corpus, seed, budget, Some(&artifacts), &mut target_fn);
            println!("fuzz {target}: {n} executions in {budget:?}, seed {seed}, no failure");
        }
    }
}
