#![no_main]
//! See `hotline_sip_gateway::fuzzing::rtp` (packets separated by 0xFF bytes).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotline_sip_gateway::fuzzing::rtp(data);
});
