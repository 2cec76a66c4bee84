#![no_main]
//! WeChat Official Account callbacks (`hotline_integrations::wechat`): the input's first line
//! is fed to the safe-mode cipher (base64 → AES-256-CBC → length-prefixed XML), the rest to
//! the XML field parser and the message parser. Needs the `wechat` module (merged to main
//! after this target was written on the harden branch).
use hotline_integrations::wechat::crypto::MsgCrypto;
use hotline_integrations::wechat::message::{parse_fields, parse_message};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    // The public test key of WeChat's documentation: any 43-character key would do.
    if let Ok(c) = MsgCrypto::new(
        "spamtest",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "wx2c2769f8efd9abc2",
    ) && let Ok(plain) = c.decrypt(first)
    {
        let _ = parse_message(&plain);
    }
    let _ = parse_fields(rest);
    let _ = parse_message(rest);
});
