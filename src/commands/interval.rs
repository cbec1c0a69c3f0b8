//! `--watch SECONDS` and `--lock-timeout SECONDS`: the text of the flag in, a
//! [`Duration`] within its bounds out, or a message clap prints as a usage error (exit 2).

use std::time::Duration;

/// The shortest interval: shorter ones would only spin reading counters.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The longest interval: one day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses a number of seconds (`2`, `0.5`) within the bounds.
pub fn parse_watch_interval(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.trim().parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    let (min, max) = (MIN_INTERVAL.as_secs_f64(), MAX_INTERVAL.as_secs_f64());
    if !(min..=max).contains(&seconds) {
        return Err(format!("the interval must be between {min} and {max} seconds (one day)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses `--lock-timeout`: 0 (do not wait) to a day. A negative, infinite or NaN value
/// is a usage error (it once meant "do not wait" without a word, `inf` included).
pub fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.trim().parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    let max = MAX_INTERVAL.as_secs_f64();
    if !(0.0..=max).contains(&seconds) {
        return Err(format!("the lock timeout must be between 0 and {max} seconds (one day)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeouts_within_a_day_parse_others_say_why_not() {
        assert_eq!(parse_lock_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_lock_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(parse_lock_timeout("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_lock_timeout("86400"), Ok(MAX_INTERVAL));
        for bad in ["-1", "86401", "1e400", "inf", "NaN", "-0.5"] {
            assert!(parse_lock_timeout(bad).is_err_and(|error| error.contains("between 0 and 86400")), "{bad}");
        }
        assert!(parse_lock_timeout("soon").is_err_and(|error| error.contains("not a number")));
    }

    #[test]
    fn intervals_within_bounds_parse_others_say_why_not() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<Duration, &str>)] = &[
            ("1",        Ok(Duration::from_secs(1))),
            ("0.5",      Ok(Duration::from_millis(500))),
            ("0.1",      Ok(MIN_INTERVAL)),
            ("86400",    Ok(MAX_INTERVAL)),
            ("0.0001",   Err("between 0.1 and 86400")),
            ("0",        Err("between 0.1 and 86400")),
            ("-1",       Err("between 0.1 and 86400")),
            ("86401",    Err("between 0.1 and 86400")),
            ("1e300",    Err("between 0.1 and 86400")),
            ("inf",      Err("between 0.1 and 86400")),
            ("NaN",      Err("between 0.1 and 86400")),
            ("soon",     Err("not a number")),
            ("",         Err("not a number")),
        ];
        for (text, expected) in cases {
            match (parse_watch_interval(text), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{text}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
