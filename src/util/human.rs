//! Sizes and times the way podman prints them ("4.26 MB", "2 hours ago").

use chrono::{DateTime, Utc};

/// `bytes` scaled to its SI unit: (value below 1000, unit).
fn si(bytes: u64) -> (f64, &'static str) {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    (v, UNITS[i])
}

/// SI size with three significant digits, as podman's SIZE column.
pub fn size(bytes: u64) -> String {
    let (v, unit) = si(bytes);
    if unit == "B" {
        return format!("{bytes} B");
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// A size as podman's inspect prints one (go-units' HumanSize: four
/// significant digits, SI units, no space): "5.041MB".
pub fn size_compact(bytes: u64) -> String {
    let (v, unit) = si(bytes);
    let decimals = 3usize.saturating_sub(v.abs().log10().floor().max(0.0) as usize);
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{unit}")
}

/// Parses a size with an SI unit (k, m, g, t; 1k = 1000), as podman's
/// `--log-opt max-size` does (go-units' FromHumanSize).
pub fn parse_si_size(s: &str) -> Option<u64> {
    let t = s.trim().to_lowercase();
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1e3),
        Some('m') => (&t[..t.len() - 1], 1e6),
        Some('g') => (&t[..t.len() - 1], 1e9),
        Some('t') => (&t[..t.len() - 1], 1e12),
        _ => (t, 1.0),
    };
    let n: f64 = num.parse().ok()?;
    (n > 0.0).then(|| (n * mult).round() as u64)
}

/// A time as Go prints a `time.Time` in a template
/// (`2006-01-02 15:04:05.999999999 -0700 MST`), which podman users parse.
pub fn go_time(t: DateTime<Utc>) -> String {
    let frac = format!("{:09}", t.timestamp_subsec_nanos());
    let frac = frac.trim_end_matches('0');
    let dot = if frac.is_empty() { "" } else { "." };
    format!("{}{dot}{frac} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S"))
}

/// A time as podman's JSON has it: RFC 3339 with `Z`, nanoseconds trimmed.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// "3 seconds ago", "About an hour ago", "5 weeks ago" (docker's wording).
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    if secs < 1 {
        return "Less than a second ago".into();
    }
    format!("{} ago", duration(secs as u64))
}

/// Docker's HumanDuration, used for CREATED and "Up 5 minutes".
pub fn duration(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        0 => "Less than a second".into(),
        1..=59 => plural(secs, "second"),
        60..=119 => "About a minute".into(),
        120..=3599 => plural(secs / 60, "minute"),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => plural(secs / 3600, "hour"),
        172_800..=1_209_599 => plural(secs / 86400, "day"),
        1_209_600..=5_183_999 => plural(secs / 604_800, "week"),
        5_184_000..=63_071_999 => plural(secs / 2_592_000, "month"),
        _ => plural(secs / 31_536_000, "year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_go_and_podman_do() {
        let t = DateTime::parse_from_rfc3339("2022-06-15T00:00:00.120Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(go_time(t), "2022-06-15 00:00:00.12 +0000 UTC");
        assert_eq!(rfc3339(t), "2022-06-15T00:00:00.120Z");
        let whole = DateTime::parse_from_rfc3339("2022-06-15T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(go_time(whole), "2022-06-15 00:00:00 +0000 UTC");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(4_261_000), "4.26 MB");
        assert_eq!(size_compact(5_041_000), "5.041MB");
        assert_eq!(size_compact(1_010_000), "1.01MB");
        assert_eq!(size_compact(500), "500B");
        assert_eq!(parse_si_size("5.041m"), Some(5_041_000));
        assert_eq!(parse_si_size("10k"), Some(10_000));
        assert_eq!(size(123_400_000), "123 MB");
        assert_eq!(size(12_340), "12.3 kB");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(90), "About a minute");
        assert_eq!(duration(7200), "2 hours");
        assert_eq!(duration(3 * 86400), "3 days");
    }
}
