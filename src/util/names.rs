//! Names and ids shared by containers, volumes and networks: podman's
//! naming rule, and random 64-hex ids.

/// podman's rule for container, volume and network names: a letter or
/// digit, then letters, digits, `_`, `.` and `-`.
pub fn valid(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// A random 64-hex id (from /dev/urandom; the clock if that fails).
pub fn random_hex() -> String {
    let mut b = [0u8; 32];
    use std::io::Read;
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
    }
    crate::util::digest::hex(&b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_ids() {
        assert!(super::valid("db") && super::valid("a.b-c_1"));
        assert!(!super::valid("-x") && !super::valid("") && !super::valid("a/b"));
        assert_eq!(super::random_hex().len(), 64);
    }
}
