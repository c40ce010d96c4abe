#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sinergi_fuzz::requests(data));
