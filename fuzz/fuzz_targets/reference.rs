//! Image references as users and registries write them: parsing never
//! panics, and what parses prints back to something that parses the same.
#![no_main]
use berth::image::reference::{Parsed, Reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Parsed::parse(s) {
        let _ = p.is_short_name();
        let q = p.qualify_default();
        let again = Reference::parse(&q.to_string()).expect("a printed reference parses");
        assert_eq!(again.to_string(), q.to_string());
    }
    let _ = Reference::parse(s);
});
