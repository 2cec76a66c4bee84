#![no_main]
//! See `hotline_sip_gateway::fuzzing::sdp`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotline_sip_gateway::fuzzing::sdp(data);
});
