#![no_main]
//! See `hotline_integrations::fuzzing::wechat`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotline_integrations::fuzzing::wechat(data);
});
