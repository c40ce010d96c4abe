#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sinergi_fuzz::http_requests(data));
