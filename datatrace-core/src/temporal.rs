//! Calendar and clock types: [`Date`], [`Time`], [`DateTime`] and [`Timestamp`].
//!
//! They are small exact value types rather than a dependency on a date library: MySQL's `TIME`
//! spans -838:59:59 to 838:59:59 (a duration, not a time of day), fractional seconds go to
//! microseconds, and every conversion to and from text must be exact. Text forms follow
//! ISO 8601 (`2024-02-29`, `13:45:00.123456`, `2024-02-29T13:45:00.123456`,
//! `2024-02-29T13:45:00.123456Z`); fractions are printed only when non-zero.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a date or time could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {input:?}: {reason}")]
pub struct TemporalError {
    /// `date`, `time`, `datetime` or `timestamp`.
    pub kind: &'static str,
    /// The offending input.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn err(kind: &'static str, input: impl fmt::Display, reason: &'static str) -> TemporalError {
    TemporalError {
        kind,
        input: input.to_string(),
        reason,
    }
}

/// A calendar date (proleptic Gregorian), years 0..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

impl Date {
    /// A validated date.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, TemporalError> {
        let text = || format!("{year:04}-{month:02}-{day:02}");
        if year > 9999 {
            return Err(err("date", text(), "year out of range 0..=9999"));
        }
        if !(1..=12).contains(&month) {
            return Err(err("date", text(), "month out of range 1..=12"));
        }
        if day == 0 || day > days_in_month(year as i64, month) {
            return Err(err("date", text(), "day out of range for the month"));
        }
        Ok(Date { year, month, day })
    }
    /// The year.
    pub fn year(&self) -> u16 {
        self.year
    }
    /// The month, 1..=12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// The day of the month, 1..=31.
    pub fn day(&self) -> u8 {
        self.day
    }
    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (y, m, d) = (self.year as i64, self.month as i64, self.day as i64);
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }
    /// The date `days` after 1970-01-01, if it lies within years 0..=9999.
    pub fn from_days_since_epoch(days: i64) -> Option<Self> {
        let z = days + 719468;
        let era = if z >= 0 { z } else { z - 146096 } / 146097;
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let y = if m <= 2 { y + 1 } else { y };
        if !(0..=9999).contains(&y) {
            return None;
        }
        Some(Date {
            year: y as u16,
            month: m,
            day: d,
        })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn parse_u32(s: &str, kind: &'static str, input: &str) -> Result<u32, TemporalError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 9 {
        return Err(err(kind, input, "expected digits"));
    }
    s.parse().map_err(|_| err(kind, input, "expected digits"))
}

/// Parses `.ffffff` (1 to 6 digits) into microseconds.
fn parse_fraction(s: &str, kind: &'static str, input: &str) -> Result<u32, TemporalError> {
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(kind, input, "fraction must be 1 to 6 digits"));
    }
    let v: u32 = s.parse().map_err(|_| err(kind, input, "bad fraction"))?;
    Ok(v * 10u32.pow(6 - s.len() as u32))
}

impl FromStr for Date {
    type Err = TemporalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut it = s.splitn(3, '-');
        let (y, m, d) = match (it.next(), it.next(), it.next()) {
            (Some(y), Some(m), Some(d)) if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
                (y, m, d)
            }
            _ => return Err(err("date", s, "expected YYYY-MM-DD")),
        };
        Date::new(
            parse_u32(y, "date", s)? as u16,
            parse_u32(m, "date", s)? as u8,
            parse_u32(d, "date", s)? as u8,
        )
    }
}

/// A signed duration with microsecond precision, as MySQL's `TIME` holds it: it may be
/// negative and may exceed 24 hours (MySQL allows -838:59:59 to 838:59:59; this type allows
/// any hour count that fits, and the MySQL sink checks the range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    micros: i64,
}

impl Time {
    /// Builds a time from its parts; `negative` flips the sign of the whole value.
    pub fn new(
        negative: bool,
        hours: u32,
        minutes: u8,
        seconds: u8,
        micros: u32,
    ) -> Result<Self, TemporalError> {
        let text = || format!("{hours}:{minutes:02}:{seconds:02}.{micros:06}");
        if minutes > 59 || seconds > 59 {
            return Err(err("time", text(), "minutes and seconds must be 0..=59"));
        }
        if micros > 999_999 {
            return Err(err("time", text(), "microseconds must be 0..=999999"));
        }
        let total = ((hours as i64 * 60 + minutes as i64) * 60 + seconds as i64) * 1_000_000
            + micros as i64;
        Ok(Time {
            micros: if negative { -total } else { total },
        })
    }
    /// A time of `micros` microseconds (negative allowed).
    pub fn from_micros(micros: i64) -> Self {
        Time { micros }
    }
    /// Total microseconds (negative for negative times).
    pub fn as_micros(&self) -> i64 {
        self.micros
    }
    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.micros < 0
    }
    /// `(hours, minutes, seconds, microseconds)` of the absolute value.
    pub fn parts(&self) -> (u64, u8, u8, u32) {
        let a = self.micros.unsigned_abs();
        let us = (a % 1_000_000) as u32;
        let s = a / 1_000_000;
        (s / 3600, ((s / 60) % 60) as u8, (s % 60) as u8, us)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s, us) = self.parts();
        if self.is_negative() {
            f.write_str("-")?;
        }
        write!(f, "{h:02}:{m:02}:{s:02}")?;
        if us != 0 {
            write!(f, ".{us:06}")?;
        }
        Ok(())
    }
}

impl FromStr for Time {
    type Err = TemporalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (neg, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (clock, frac) = match rest.split_once('.') {
            Some((c, f)) => (c, parse_fraction(f, "time", s)?),
            None => (rest, 0),
        };
        let mut it = clock.split(':');
        let (h, m, sec) = match (it.next(), it.next(), it.next(), it.next()) {
            (Some(h), Some(m), Some(sec), None) if m.len() == 2 && sec.len() == 2 => (h, m, sec),
            _ => return Err(err("time", s, "expected [-]HH:MM:SS[.ffffff]")),
        };
        Time::new(
            neg,
            parse_u32(h, "time", s)?,
            parse_u32(m, "time", s)? as u8,
            parse_u32(sec, "time", s)? as u8,
            frac,
        )
    }
}

/// A date and a time of day without a time zone (MySQL `DATETIME`), microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    date: Date,
    /// Microseconds since midnight.
    micros_of_day: u64,
}

const MICROS_PER_DAY: u64 = 86_400_000_000;

impl DateTime {
    /// A validated date-time.
    pub fn new(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
    ) -> Result<Self, TemporalError> {
        if hour > 23 || minute > 59 || second > 59 || micros > 999_999 {
            return Err(err(
                "datetime",
                format!("{date}T{hour:02}:{minute:02}:{second:02}.{micros:06}"),
                "time of day out of range",
            ));
        }
        Ok(DateTime {
            date,
            micros_of_day: ((hour as u64 * 60 + minute as u64) * 60 + second as u64) * 1_000_000
                + micros as u64,
        })
    }
    /// The date part.
    pub fn date(&self) -> Date {
        self.date
    }
    /// `(hour, minute, second, microsecond)`.
    pub fn time_parts(&self) -> (u8, u8, u8, u32) {
        let us = (self.micros_of_day % 1_000_000) as u32;
        let s = self.micros_of_day / 1_000_000;
        ((s / 3600) as u8, ((s / 60) % 60) as u8, (s % 60) as u8, us)
    }
    /// Microseconds since 1970-01-01T00:00:00 when this date-time is read as UTC.
    pub fn as_unix_micros(&self) -> i64 {
        self.date.days_since_epoch() * MICROS_PER_DAY as i64 + self.micros_of_day as i64
    }
    /// The date-time `micros` after the epoch, read as UTC.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        let days = micros.div_euclid(MICROS_PER_DAY as i64);
        let rem = micros.rem_euclid(MICROS_PER_DAY as i64) as u64;
        Some(DateTime {
            date: Date::from_days_since_epoch(days)?,
            micros_of_day: rem,
        })
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s, us) = self.time_parts();
        write!(f, "{}T{h:02}:{m:02}:{s:02}", self.date)?;
        if us != 0 {
            write!(f, ".{us:06}")?;
        }
        Ok(())
    }
}

impl FromStr for DateTime {
    type Err = TemporalError;
    /// Accepts `YYYY-MM-DDTHH:MM:SS[.ffffff]` and the same with a space instead of `T`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < 19 || !s.is_char_boundary(10) {
            return Err(err("datetime", s, "expected YYYY-MM-DDTHH:MM:SS[.ffffff]"));
        }
        let (d, rest) = s.split_at(10);
        let sep = rest.as_bytes()[0];
        if sep != b'T' && sep != b' ' {
            return Err(err(
                "datetime",
                s,
                "expected 'T' or ' ' between date and time",
            ));
        }
        let date: Date = d
            .parse()
            .map_err(|e: TemporalError| err("datetime", s, e.reason))?;
        let t: Time = rest[1..]
            .parse()
            .map_err(|e: TemporalError| err("datetime", s, e.reason))?;
        let (h, m, sec, us) = t.parts();
        if t.is_negative() || h > 23 {
            return Err(err("datetime", s, "time of day out of range"));
        }
        DateTime::new(date, h as u8, m, sec, us)
    }
}

/// An instant in UTC with microsecond precision (MySQL `TIMESTAMP`, stored as UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    micros: i64,
}

impl Timestamp {
    /// The instant `micros` microseconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_micros(micros: i64) -> Self {
        Timestamp { micros }
    }
    /// Microseconds since the epoch.
    pub fn as_unix_micros(&self) -> i64 {
        self.micros
    }
    /// The current time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            micros: d.as_micros() as i64,
        }
    }
    /// The same instant as a UTC calendar date-time, if within years 0..=9999.
    pub fn to_utc(&self) -> Option<DateTime> {
        DateTime::from_unix_micros(self.micros)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_utc() {
            Some(dt) => write!(f, "{dt}Z"),
            None => write!(f, "@{}us", self.micros),
        }
    }
}

impl FromStr for Timestamp {
    type Err = TemporalError;
    /// Accepts RFC 3339: `YYYY-MM-DDTHH:MM:SS[.ffffff]` followed by `Z` or `+HH:MM` / `-HH:MM`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (body, offset_secs) =
            if let Some(b) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
                (b, 0i64)
            } else if s.len() > 6 && s.is_char_boundary(s.len() - 6) {
                let (b, off) = s.split_at(s.len() - 6);
                let sign = match off.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return Err(err("timestamp", s, "expected a Z or +HH:MM offset")),
                };
                let (h, m) = off[1..]
                    .split_once(':')
                    .ok_or_else(|| err("timestamp", s, "expected a Z or +HH:MM offset"))?;
                let secs = (parse_u32(h, "timestamp", s)? * 3600
                    + parse_u32(m, "timestamp", s)? * 60) as i64;
                (b, sign * secs)
            } else {
                return Err(err("timestamp", s, "expected a Z or +HH:MM offset"));
            };
        let dt: DateTime = body
            .parse()
            .map_err(|e: TemporalError| err("timestamp", s, e.reason))?;
        Ok(Timestamp {
            micros: dt.as_unix_micros() - offset_secs * 1_000_000,
        })
    }
}

macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_text!(Date, Time, DateTime, Timestamp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_days() {
        for days in [-719_528i64, -1, 0, 1, 11_016, 19_782, 2_932_896] {
            let d = Date::from_days_since_epoch(days).unwrap();
            assert_eq!(d.days_since_epoch(), days, "{d}");
        }
        assert_eq!(
            Date::from_days_since_epoch(0).unwrap().to_string(),
            "1970-01-01"
        );
        assert_eq!(
            "2024-02-29".parse::<Date>().unwrap().days_since_epoch(),
            19_782
        );
        assert!("2023-02-29".parse::<Date>().is_err());
        assert!("2023-13-01".parse::<Date>().is_err());
        assert!("0000-00-00".parse::<Date>().is_err());
    }

    #[test]
    fn times_cover_mysql_range() {
        let t: Time = "-838:59:59".parse().unwrap();
        assert!(t.is_negative());
        assert_eq!(t.to_string(), "-838:59:59");
        let t: Time = "25:00:00.5".parse().unwrap();
        assert_eq!(t.to_string(), "25:00:00.500000");
        assert_eq!(t.as_micros(), 90_000_500_000);
        assert!("12:60:00".parse::<Time>().is_err());
    }

    #[test]
    fn datetimes_and_timestamps_parse_and_print() {
        let dt: DateTime = "2024-02-29 13:45:00.000123".parse().unwrap();
        assert_eq!(dt.to_string(), "2024-02-29T13:45:00.000123");
        let ts: Timestamp = "2024-02-29T14:45:00.000123+01:00".parse().unwrap();
        assert_eq!(ts.as_unix_micros(), dt.as_unix_micros());
        assert_eq!(ts.to_string(), "2024-02-29T13:45:00.000123Z");
        assert_eq!(
            Timestamp::from_unix_micros(-1).to_string(),
            "1969-12-31T23:59:59.999999Z"
        );
        assert!("2024-02-29T24:00:00".parse::<DateTime>().is_err());
    }

    #[test]
    fn serde_uses_text() {
        let d: Date = "1999-12-31".parse().unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1999-12-31\"");
        assert_eq!(serde_json::from_str::<Date>("\"1999-12-31\"").unwrap(), d);
    }
}
