//! When an entry fires: a cron expression read as wall-clock time in the entry's time zone.
//!
//! The `cron` crate walks wall-clock times; turning them into instants is where time zones bite, so it
//! is done here with one rule for each daylight-saving edge (the rules of classic Vixie cron):
//! - a wall-clock time that does not exist (the hour skipped in spring) fires at the first minute that
//!   exists after it, so a daily job is never silently dropped for a day;
//! - a wall-clock time that occurs twice (the hour repeated in autumn) fires once, at its first
//!   occurrence, so a daily job never runs twice in one night.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct When {
    cron: cron::Schedule,
    pub zone: Tz,
}

impl When {
    /// Parses a cron expression: five fields (minute first) or six/seven (seconds first, optional year).
    /// Day-of-week must be written as names: crons disagree on what the numbers mean.
    pub fn parse(expression: &str, zone: Tz) -> Result<Self, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let normalized = match fields.len() {
            5 => format!("0 {}", fields.join(" ")),
            6 | 7 => fields.join(" "),
            _ if expression.trim_start().starts_with('@') => expression.trim().to_owned(),
            n => {
                return Err(format!(
                    "has {n} fields; expected 5 (min hour day month weekday) or 6-7 (with seconds first)"
                ))
            }
        };
        if let Some(weekday) = normalized.split_whitespace().nth(5) {
            if weekday.chars().any(|c| c.is_ascii_digit()) && !weekday.starts_with('*') {
                return Err(format!(
                    "day-of-week {weekday:?} uses numbers, which crons read differently (is 1 Sunday or Monday?); \
                     write names such as MON-FRI"
                ));
            }
        }
        let cron = cron::Schedule::from_str(&normalized).map_err(|error| error.to_string())?;
        Ok(Self { cron, zone })
    }

    /// Fire times strictly after `after`, in order, each at most once.
    pub fn after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        // Walk wall-clock times (as if in UTC) from a little before `after`'s local time, so a repeated
        // hour is walked from its first occurrence; instants at or before `after` are dropped below.
        let start = self.local(after) - Duration::hours(3);
        let mut last = after;
        self.cron.after(&start.and_utc()).filter_map(move |wall| {
            let instant = self.instant(wall.naive_utc())?;
            (instant > last).then(|| {
                last = instant;
                instant
            })
        })
    }

    /// The latest fire time at or before `now`, if any within the last ~400 days.
    pub fn latest_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let wall_now = self.local(now) + Duration::hours(3);
        let mut earlier = self.cron.after(&wall_now.and_utc());
        let horizon = now - Duration::days(400);
        std::iter::from_fn(|| earlier.next_back())
            .take_while(|wall| wall.naive_utc() > self.local(horizon))
            .filter_map(|wall| self.instant(wall.naive_utc()))
            .find(|instant| *instant <= now)
    }

    fn local(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.zone).naive_local()
    }

    /// The instant a wall-clock time means in this zone, by the rules in the module comment.
    fn instant(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        if let Some(first) = self.zone.from_local_datetime(&wall).earliest() {
            return Some(first.with_timezone(&Utc));
        }
        // In a gap: the first minute after it (gaps are at most a few hours anywhere).
        let minute_start = wall.with_second(0)?;
        (1..=240)
            .map(|minutes| minute_start + Duration::minutes(minutes))
            .find_map(|later| self.zone.from_local_datetime(&later).earliest())
            .map(|instant| instant.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("test time").with_timezone(&Utc)
    }

    fn next(when: &When, after: &str, count: usize) -> Vec<String> {
        when.after(utc(after)).take(count).map(|t| t.with_timezone(&when.zone).to_rfc3339()).collect()
    }

    #[test]
    fn seoul_has_no_daylight_saving_so_a_daily_time_is_always_the_same_instant() {
        let when = When::parse("0 30 0 * * *", chrono_tz::Asia::Seoul).expect("valid");
        assert_eq!(
            next(&when, "2026-03-07T12:00:00Z", 3),
            ["2026-03-08T00:30:00+09:00", "2026-03-09T00:30:00+09:00", "2026-03-10T00:30:00+09:00"]
        );
        // 00:30 in Seoul is 15:30 UTC the day before.
        assert_eq!(when.after(utc("2026-11-25T15:29:59Z")).next(), Some(utc("2026-11-25T15:30:00Z")));
    }

    #[test]
    fn five_fields_mean_minute_first_with_seconds_zero() {
        let when = When::parse("30 0 * * *", chrono_tz::Asia::Seoul).expect("valid");
        assert_eq!(next(&when, "2026-11-25T00:00:00Z", 1), ["2026-11-26T00:30:00+09:00"]);
    }

    #[test]
    fn a_time_skipped_by_daylight_saving_fires_right_after_the_gap() {
        // New York skips 02:00-03:00 on 2026-03-08.
        let when = When::parse("0 30 2 * * *", chrono_tz::America::New_York).expect("valid");
        assert_eq!(
            next(&when, "2026-03-07T00:00:00Z", 3),
            ["2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
        );
    }

    #[test]
    fn a_time_repeated_by_daylight_saving_fires_once() {
        // New York repeats 01:00-02:00 on 2026-11-01.
        let when = When::parse("0 30 1 * * *", chrono_tz::America::New_York).expect("valid");
        assert_eq!(
            next(&when, "2026-10-31T00:00:00Z", 3),
            ["2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
        // Asked from inside the repeated hour (after its first 01:30), the next is the following day.
        assert_eq!(next(&when, "2026-11-01T06:00:00Z", 1), ["2026-11-02T01:30:00-05:00"]);
    }

    #[test]
    fn day_31_fires_only_in_months_that_have_one_and_february_29_waits_for_a_leap_year() {
        let last = When::parse("0 0 12 31 * *", chrono_tz::Asia::Seoul).expect("valid");
        assert_eq!(
            next(&last, "2026-01-31T12:00:00+09:00", 3),
            ["2026-03-31T12:00:00+09:00", "2026-05-31T12:00:00+09:00", "2026-07-31T12:00:00+09:00"]
        );
        let leap = When::parse("0 0 0 29 Feb *", chrono_tz::Asia::Seoul).expect("valid");
        assert_eq!(next(&leap, "2026-11-25T00:00:00Z", 1), ["2028-02-29T00:00:00+09:00"]);
    }

    #[test]
    fn the_latest_slot_at_or_before_now_counts_now_itself() {
        let when = When::parse("0 0 * * * *", chrono_tz::Asia::Seoul).expect("valid");
        assert_eq!(when.latest_at_or_before(utc("2026-11-25T10:00:00Z")), Some(utc("2026-11-25T10:00:00Z")));
        assert_eq!(when.latest_at_or_before(utc("2026-11-25T10:59:59Z")), Some(utc("2026-11-25T10:00:00Z")));
        let monthly = When::parse("0 0 0 1 * *", chrono_tz::Asia::Seoul).expect("valid");
        assert_eq!(
            monthly.latest_at_or_before(utc("2026-11-25T10:00:00Z")),
            Some(utc("2026-10-31T15:00:00Z")) // 1 November, midnight in Seoul
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let zone = chrono_tz::Asia::Seoul;
        assert!(When::parse("* * *", zone).unwrap_err().contains("has 3 fields"));
        assert!(When::parse("0 0 0 * * 1-5", zone).unwrap_err().contains("write names such as MON-FRI"));
        assert!(When::parse("0 61 * * * *", zone).is_err());
        assert!(When::parse("0 0 0 * * MON-FRI", zone).is_ok());
    }
}
