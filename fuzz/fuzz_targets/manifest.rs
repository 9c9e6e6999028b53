//! Manifests, indexes and image configs come from registries and archives
//! written by strangers: decoding and platform selection never panic.
#![no_main]
use berth::image::manifest::{ImageConfig, Index, Manifest, Platform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = serde_json::from_slice::<Index>(data) {
        let _ = i.select(&Platform::parse("linux/amd64").expect("valid"));
        let _ = i.select(&Platform::parse("linux/arm64/v8").expect("valid"));
    }
    let _ = serde_json::from_slice::<Manifest>(data);
    let _ = serde_json::from_slice::<ImageConfig>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Platform::parse(s);
    }
});
