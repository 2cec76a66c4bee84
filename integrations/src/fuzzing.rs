//! Entry points for the fuzz targets (`fuzz/`, issue 12): the auction system's bidder export
//! and Bohai Bank's deposit-flow file, row by row. Random bytes rarely form a valid header,
//! so the row targets put the configured header line in front of the input and fuzz the
//! rows; `table_file` takes the whole file (CSV in UTF-8 or GBK, or XLSX). Bad rows must
//! come back as `RowProblem`s, bad files as an `IntegrationError`, never a panic.
//! `wechat` takes a WeChat callback: bad ciphertext or XML must be a `WechatError`, and
//! the passive reply we would send to a good one must parse back and survive the cipher.

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

/// A WeChat Official Account callback: the first line goes through the safe-mode cipher
/// (base64 → AES-256-CBC → length-prefixed XML) and the message parser, the rest through
/// the XML field and message parsers.
pub fn wechat(data: &[u8]) {
    use crate::wechat::crypto::MsgCrypto;
    use crate::wechat::message::{
        Inbound, encrypted_field, parse_fields, parse_message, text_reply,
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    // The public test key of WeChat's documentation: any 43-character key would do.
    let c = MsgCrypto::new(
        "spamtest",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "wx2c2769f8efd9abc2",
    )
    .expect("the documented test key is valid");
    if let Ok(plain) = c.decrypt(first) {
        let _ = parse_message(&plain);
    }
    let _ = parse_fields(rest);
    let _ = encrypted_field(rest);
    // Every callback that parses can be answered: our reply parses back and survives the
    // cipher (a callback without ToUserName once gave a reply without sender; now refused).
    if let Ok(msg) = parse_message(rest)
        && let Some(text) = msg.text()
    {
        // Echoing the user's own text back is the worst case for the reply's escaping.
        let reply = text_reply(&msg.from_user, &msg.to_user, msg.create_time, text);
        let back = parse_message(&reply).expect("our text reply parses");
        assert!(matches!(back.kind, Inbound::Text { .. }), "{back:?}");
        let sealed = c.encrypt_with(&[7; 16], &reply);
        assert_eq!(c.decrypt(&sealed).expect("our ciphertext decrypts"), reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fuzz_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    const TARGETS: &[hotline_testkit::mutate::Target] = &[
        ("bidder_rows", bidder_rows),
        ("bank_rows", bank_rows),
        ("table_file", table_file),
        ("wechat", wechat),
    ];

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
