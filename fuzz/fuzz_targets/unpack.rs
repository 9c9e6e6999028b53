//! Layer unpacking: whatever the tar says (paths with `..`, absolute
//! links, links through links, whiteouts, hard links), nothing lands
//! outside the layer's directory. A sentinel directory beside it must
//! stay empty, and a file above it must stay as it was.
#![no_main]
use berth::image::unpack::{unpack, UnpackOptions};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fn base() -> &'static PathBuf {
    static BASE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let b = std::env::temp_dir().join(format!("berth-fuzz-unpack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&b);
        std::fs::create_dir_all(b.join("sentinel")).unwrap();
        std::fs::write(b.join("above"), "untouched").unwrap();
        b
    })
}

fuzz_target!(|data: &[u8]| {
    let b = base();
    let dest = b.join("layer");
    if std::fs::remove_dir_all(&dest).is_err() && dest.exists() {
        let _ = std::process::Command::new("rm").arg("-rf").arg(&dest).status();
    }
    std::fs::create_dir_all(&dest).unwrap();
    let _ = unpack(data, &dest, UnpackOptions { rootless: true, ..Default::default() });
    assert!(
        std::fs::read_dir(b.join("sentinel")).unwrap().next().is_none(),
        "an entry landed outside the layer"
    );
    assert_eq!(std::fs::read_to_string(b.join("above")).unwrap(), "untouched");
    let names: Vec<_> = std::fs::read_dir(b).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(names.len() == 3, "new entries beside the layer: {names:?}");
});
