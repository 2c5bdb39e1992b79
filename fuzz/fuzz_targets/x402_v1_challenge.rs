#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| purser_core::fuzzing::x402_v1_challenge(data));
