#![no_main]
//! See `hotline_integrations::fuzzing::table_file`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotline_integrations::fuzzing::table_file(data);
});
