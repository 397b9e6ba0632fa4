//! Durations as operators write them: `90s`, `30m`, `2h`, `1h30m`, `1d`.

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(format!("{text:?}: unknown unit {c:?}; use s, m, h or d (e.g. 90s, 2h, 1h30m)")),
        };
        let amount: u64 = digits.parse().map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        total = amount.checked_mul(unit).and_then(|part| total.checked_add(part)).ok_or("is too long")?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!("{text:?}: {digits} has no unit; use s, m, h or d (e.g. 90s, 2h, 1h30m)"));
    }
    match total {
        0 => Err(format!("{text:?}: must be longer than zero")),
        seconds if seconds > 7 * 86_400 => Err(format!("{text:?}: must be at most 7d")),
        seconds => Ok(Duration::from_secs(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "0s", "10", "5x", "h", "8d", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
