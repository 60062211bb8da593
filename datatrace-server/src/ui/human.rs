//! Numbers and durations for people: `1,234,567`, `12.3k/s`, `1m 05s`.

use std::time::Duration;

/// `1234567` -> `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate in records per second: `950`, `12.3k`, `1.25M`.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() {
        return "-".into();
    }
    let per_sec = per_sec.max(0.0).abs();
    if per_sec >= 1e6 {
        format!("{:.2}M", per_sec / 1e6)
    } else if per_sec >= 1e4 {
        format!("{:.1}k", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}")
    }
}

/// `0.4s`, `12.3s`, `4m 05s`, `2h 03m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        let s = s as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let s = s as u64;
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Time left to process `left` records at `per_sec`, if the rate is known.
pub fn eta(left: u64, per_sec: f64) -> Option<Duration> {
    (per_sec > 0.0 && per_sec.is_finite()).then(|| Duration::from_secs_f64(left as f64 / per_sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(rate(950.2), "950");
        assert_eq!(rate(12_345.0), "12.3k");
        assert_eq!(rate(2_500_000.0), "2.50M");
        assert_eq!(duration(Duration::from_millis(400)), "0.4s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(duration(Duration::from_secs(7380)), "2h 03m");
        assert_eq!(eta(100, 50.0), Some(Duration::from_secs(2)));
        assert_eq!(eta(100, 0.0), None);
    }
}
