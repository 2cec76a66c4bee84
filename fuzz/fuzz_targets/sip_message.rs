#![no_main]
//! See `hotline_sip_gateway::fuzzing::sip_message`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hotline_sip_gateway::fuzzing::sip_message(data);
});
