//! `{date}`, `{yesterday}` and `{slot}` in an entry's arguments, filled in from the slot being fired (not
//! from the clock), so a catch-up run or a retry processes the day its slot belongs to.

use chrono::{DateTime, Days, Utc};
use chrono_tz::Tz;

const KNOWN: [&str; 3] = ["date", "yesterday", "slot"];

/// Checks that every `{...}` in `arg` is a known placeholder.
pub fn check(arg: &str) -> Result<(), String> {
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("argument {arg:?} has a '{{' without its '}}'"));
        };
        let name = &rest[open + 1..open + close];
        if !KNOWN.contains(&name) {
            return Err(format!(
                "argument {arg:?} uses {{{name}}}; the known placeholders are {{date}}, {{yesterday}} and {{slot}}"
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// `arg` with its placeholders replaced: dates are the slot's calendar day in the entry's time zone.
pub fn expand(arg: &str, slot: DateTime<Utc>, zone: Tz) -> String {
    let day = slot.with_timezone(&zone).date_naive();
    let yesterday = day.checked_sub_days(Days::new(1)).unwrap_or(day);
    arg.replace("{date}", &day.to_string())
        .replace("{yesterday}", &yesterday.to_string())
        .replace("{slot}", &slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_the_slots_day_in_the_entrys_zone() {
        // 15:30 UTC on 25 November is 00:30 on 26 November in Seoul.
        let slot = DateTime::parse_from_rfc3339("2026-11-25T15:30:00Z").expect("time").with_timezone(&Utc);
        let seoul = chrono_tz::Asia::Seoul;
        assert_eq!(expand("--date={yesterday}", slot, seoul), "--date=2026-11-25");
        assert_eq!(expand("{date}", slot, seoul), "2026-11-26");
        assert_eq!(expand("{date}", slot, chrono_tz::UTC), "2026-11-25");
        assert_eq!(expand("at {slot}", slot, seoul), "at 2026-11-25T15:30:00Z");
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_rejected() {
        assert!(check("--date={yesterday}").is_ok());
        assert!(check("{today}").unwrap_err().contains("{today}"));
        assert!(check("{date").is_err());
    }
}
