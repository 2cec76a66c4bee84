#![no_main]
//! See `hotline_integrations::fuzzing::bidder_rows`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotline_integrations::fuzzing::bidder_rows(data);
});
