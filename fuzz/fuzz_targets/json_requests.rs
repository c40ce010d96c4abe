#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sinergi_fuzz::json_requests(data));
