#![no_main]
//! See `hotline_ivr::flow::fuzzing::flow_file`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotline_ivr::flow::fuzzing::flow_file(data);
});
