//! Cron expressions with a time zone, for schedules: five fields (minute granularity) or
//! the usual aliases (`@hourly`, `@daily`, ...), evaluated by `croner` in an IANA time zone
//! (`chrono-tz`), so `0 2 * * *` in `Europe/Berlin` runs at 02:00 Berlin time in summer and
//! in winter.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// A schedule's timing: when it fires, in which zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: Cron,
    tz: Tz,
    expr: String,
}

/// What is wrong with a schedule's timing: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSpecError {
    /// `cron` or `timezone`.
    pub field: &'static str,
    /// The reason, with an example of a right value.
    pub message: String,
}

impl CronSpec {
    /// Parses `expr` (five fields: minute hour day-of-month month day-of-week, or an alias)
    /// in the IANA zone `tz` (`UTC`, `Europe/Berlin`, `Asia/Shanghai`).
    pub fn parse(expr: &str, tz: &str) -> Result<CronSpec, CronSpecError> {
        let expr = expr.trim();
        let tz = Tz::from_str(tz.trim()).map_err(|_| CronSpecError {
            field: "timezone",
            message: format!(
                "unknown time zone {tz:?}: expected an IANA name such as UTC, Europe/Berlin or \
                 Asia/Shanghai"
            ),
        })?;
        if expr.split_whitespace().count() > 5 {
            return Err(CronSpecError {
                field: "cron",
                message: format!(
                    "{expr:?} has more than five fields: schedules run at most once a minute \
                     (minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\")"
                ),
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| CronSpecError {
                field: "cron",
                message: format!(
                    "{expr:?} is not a cron expression: {e} (expected minute hour \
                     day-of-month month day-of-week, e.g. \"0 2 * * *\" or \"*/15 * * * *\")"
                ),
            })?;
        // A pattern that never fires (30 February) is refused now rather than never run.
        let spec = CronSpec {
            cron,
            tz,
            expr: expr.to_owned(),
        };
        if spec.next_after(Utc::now()).is_none() {
            return Err(CronSpecError {
                field: "cron",
                message: format!("{expr:?} never fires"),
            });
        }
        Ok(spec)
    }

    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone's name.
    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    /// The first firing strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The next `n` firings after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// `t` as a local time of the schedule's zone (`2026-12-07 02:00 CET`).
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// A description in English ("At 02:00").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn fires_in_its_time_zone_across_daylight_saving() {
        let s = CronSpec::parse("0 2 * * *", "Europe/Berlin").unwrap();
        // Winter: 02:00 CET is 01:00 UTC.
        assert_eq!(
            s.next_after(utc(2026, 1, 10, 12, 0)),
            Some(utc(2026, 1, 11, 1, 0))
        );
        // Summer: 02:00 CEST is 00:00 UTC.
        assert_eq!(
            s.next_after(utc(2026, 7, 10, 12, 0)),
            Some(utc(2026, 7, 11, 0, 0))
        );
        let s = CronSpec::parse("30 9 * * 1-5", "Asia/Shanghai").unwrap();
        // Friday 2026-03-06 09:30 +08:00 is 01:30 UTC; the next is Monday.
        assert_eq!(
            s.next_after(utc(2026, 3, 6, 1, 30)),
            Some(utc(2026, 3, 9, 1, 30))
        );
        let every = CronSpec::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            every.upcoming(utc(2026, 1, 1, 0, 1), 3),
            [
                utc(2026, 1, 1, 0, 15),
                utc(2026, 1, 1, 0, 30),
                utc(2026, 1, 1, 0, 45)
            ]
        );
        assert!(CronSpec::parse("@daily", "UTC").is_ok());
        let berlin = CronSpec::parse("0 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(berlin.local(utc(2026, 1, 11, 1, 0)), "2026-01-11 02:00 CET");
    }

    #[test]
    fn wrong_expressions_and_zones_are_named() {
        let e = CronSpec::parse("0 2 * *", "UTC").unwrap_err();
        assert_eq!(e.field, "cron");
        let e = CronSpec::parse("* * * * * *", "UTC").unwrap_err();
        assert!(e.message.contains("at most once a minute"), "{}", e.message);
        let e = CronSpec::parse("0 2 * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(e.field, "timezone");
        let e = CronSpec::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert!(e.message.contains("never fires"), "{}", e.message);
    }
}
