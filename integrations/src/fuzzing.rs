//! Entry points for the fuzz targets (`fuzz/`, issue 12): the auction system's bidder export
//! and Bohai Bank's deposit-flow file, row by row. Random bytes rarely form a valid header,
//! so the row targets put the configured header line in front of the input and fuzz the
//! rows; `table_file` takes the whole file (CSV in UTF-8 or GBK, or XLSX). Bad rows must
//! come back as `RowProblem`s, bad files as an `IntegrationError`, never a panic.

use crate::IntegrationsConfig;
use crate::table::{FileFormat, Table, TextEncoding, read_table};
use crate::{bank, bidders};

fn header_line(names: &[&str]) -> Vec<u8> {
    let mut v = names.join(",").into_bytes();
    v.push(b'\n');
    v
}

fn parse_all(t: &Table, cfg: &IntegrationsConfig) {
    let _ = bidders::parse_table(t, &cfg.bidder_columns);
    let _ = bank::parse_deposit_flows(t, &cfg.deposit_columns);
}

/// Rows of a bidder export under the default header.
pub fn bidder_rows(data: &[u8]) {
    let cfg = IntegrationsConfig::default();
    let c = &cfg.bidder_columns;
    let mut file = header_line(&[
        &c.application_code,
        &c.kind,
        &c.name,
        &c.id_number,
        &c.mobile,
        &c.deposit_status,
        &c.deposit_date,
        &c.deposit_amount,
        &c.activated,
        &c.result,
        &c.price,
        &c.payment_status,
        &c.refund_status,
        &c.refund_date,
        &c.refund_failure,
    ]);
    file.extend_from_slice(data);
    if let Ok(t) = read_table(&file, FileFormat::Csv, TextEncoding::Auto) {
        parse_all(&t, &cfg);
    }
}

/// Rows of a deposit-flow file under the default header.
pub fn bank_rows(data: &[u8]) {
    let cfg = IntegrationsConfig::default();
    let c = &cfg.deposit_columns;
    let mut file = header_line(&[
        &c.serial,
        &c.time,
        &c.payer_name,
        &c.payer_account,
        &c.amount,
        &c.memo,
    ]);
    file.extend_from_slice(data);
    if let Ok(t) = read_table(&file, FileFormat::Csv, TextEncoding::Auto) {
        parse_all(&t, &cfg);
    }
}

/// A whole uploaded file, format and encoding detected as on import.
pub fn table_file(data: &[u8]) {
    let cfg = IntegrationsConfig::default();
    if let Ok(t) = read_table(data, FileFormat::Auto, TextEncoding::Auto) {
        parse_all(&t, &cfg);
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
        for (target, run) in [
            ("bidder_rows", bidder_rows as fn(&[u8])),
            ("bank_rows", bank_rows),
            ("table_file", table_file),
        ] {
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
        for (target, run) in [
            ("bidder_rows", bidder_rows as fn(&[u8])),
            ("bank_rows", bank_rows),
            ("table_file", table_file),
        ] {
            let corpus = mutate::load_corpus(&fuzz.join("corpus").join(target));
            let artifacts = fuzz.join("artifacts").join(target);
            let mut target_fn = run;
            let n = mutate::run(&corpus, seed, budget, Some(&artifacts), &mut target_fn);
            println!("fuzz {target}: {n} executions in {budget:?}, seed {seed}, no failure");
        }
    }
}
