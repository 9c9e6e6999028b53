//! registries.conf and its drop-ins: any text merges or fails cleanly.
#![no_main]
use berth::image::registries_conf::RegistriesConf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut conf = RegistriesConf::default();
    let _ = conf.merge_str(s);
});
