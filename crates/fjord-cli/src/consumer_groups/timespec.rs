//! Times for `--reset-offsets`: `--to-datetime` (Kafka's `Utils.getDateTime`:
//! `YYYY-MM-DDTHH:mm:SS.sss` with an optional zone, UTC when absent) and `--by-duration`
//! (Java's `Duration.parse`: `PnDTnHnMn.nS`). Both become epoch milliseconds for ListOffsets.

use anyhow::{anyhow, bail};

/// Days from 1970-01-01 to a proleptic Gregorian date (negative before 1970).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Shift the year to start in March so the leap day is the last day of a "year".
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// A zone suffix (`Z`, `+01`, `+0100`, `+01:00`, `-05:30`) as minutes east of UTC.
fn zone_minutes(zone: &str) -> Option<i64> {
    if zone.is_empty() || zone == "Z" {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body: String = zone[1..].chars().filter(|c| *c != ':').collect();
    let (h, m) = match body.len() {
        2 => (digits(&body, 2)?, 0),
        4 => (digits(&body[..2], 2)?, digits(&body[2..], 2)?),
        _ => return None,
    };
    (h <= 18 && m < 60).then_some(sign * (h * 60 + m))
}

/// Parses `--to-datetime` into epoch milliseconds.
pub fn parse_datetime(value: &str) -> anyhow::Result<i64> {
    let bad = || {
        anyhow!(
            "invalid --to-datetime '{value}': expected YYYY-MM-DDTHH:mm:SS.sss with an optional zone (Z, +01:00)"
        )
    };
    let Some((date, time)) = value.trim().split_once('T') else {
        bail!(
            "Error parsing timestamp. It does not contain a 'T' according to ISO8601 format: '{value}'"
        );
    };
    let mut ymd = date.split('-');
    let (Some(y), Some(mo), Some(d), None) = (ymd.next(), ymd.next(), ymd.next(), ymd.next())
    else {
        return Err(bad());
    };
    let (year, month, day) = (
        digits(y, 4).ok_or_else(bad)?,
        digits(mo, 2).ok_or_else(bad)?,
        digits(d, 2).ok_or_else(bad)?,
    );
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad());
    }
    let zone_at = time.find(['Z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let offset_minutes = zone_minutes(zone).ok_or_else(bad)?;
    let (hms, millis) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, digits(frac, 3).ok_or_else(bad)?),
        None => (clock, 0),
    };
    let mut parts = hms.split(':');
    let (Some(h), Some(mi), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (h, mi, s) = (
        digits(h, 2).ok_or_else(bad)?,
        digits(mi, 2).ok_or_else(bad)?,
        digits(s, 2).ok_or_else(bad)?,
    );
    if h > 23 || mi > 59 || s > 59 {
        return Err(bad());
    }
    let seconds =
        days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

/// Parses `--by-duration` (`P1D`, `PT1H30M`, `PT0.5S`, `-PT10M`) into milliseconds.
pub fn parse_duration(value: &str) -> anyhow::Result<i64> {
    let bad = || {
        anyhow!("invalid --by-duration '{value}': expected an ISO-8601 duration like PnDTnHnMnS")
    };
    let upper = value.trim().to_ascii_uppercase();
    let (negative, rest) = match upper.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, upper.strip_prefix('+').unwrap_or(&upper)),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    let (date_part, time_part) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let mut total: i128 = 0;
    let mut any = false;
    // Date part: only days (as in Java's Duration).
    if !date_part.is_empty() {
        let n = date_part.strip_suffix('D').ok_or_else(bad)?;
        total += i128::from(n.parse::<i64>().map_err(|_| bad())?) * 86_400_000;
        any = true;
    }
    if let Some(mut t) = time_part {
        for (unit, ms) in [('H', 3_600_000i128), ('M', 60_000)] {
            if let Some(at) = t.find(unit) {
                total += i128::from(t[..at].parse::<i64>().map_err(|_| bad())?) * ms;
                t = &t[at + 1..];
                any = true;
            }
        }
        if let Some(n) = t.strip_suffix('S') {
            let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let secs = i128::from(whole.parse::<i64>().map_err(|_| bad())?);
            let frac_ms = format!("{frac:0<3}")[..3]
                .parse::<i128>()
                .map_err(|_| bad())?;
            let frac_ms = if whole.starts_with('-') {
                -frac_ms
            } else {
                frac_ms
            };
            total += secs * 1000 + frac_ms;
            any = true;
        } else if !t.is_empty() {
            return Err(bad());
        }
    }
    if !any {
        return Err(bad());
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }

    #[test]
    fn datetimes_parse_with_and_without_zones() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20.000").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20.123Z").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(
            parse_datetime("2023-11-14T23:13:20.000+01:00").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime("2023-11-14T17:13:20.000-0500").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime("2023-11-14T23:13:20.000+01").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20").unwrap(),
            1_700_000_000_000
        );
        for bad in [
            "2023-11-14 22:13:20.000",
            "2023-02-29T00:00:00.000",
            "2023-11-14T24:00:00.000",
            "2023-11-14T22:13:20.1",
            "2023-11-14T22:13:20.000+1",
            "23-11-14T22:13:20.000",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
        assert!(
            parse_datetime("2023-11-14")
                .unwrap_err()
                .to_string()
                .contains("does not contain a 'T'")
        );
    }

    #[test]
    fn durations_parse_like_java() {
        assert_eq!(parse_duration("PT0S").unwrap(), 0);
        assert_eq!(parse_duration("P1D").unwrap(), 86_400_000);
        assert_eq!(parse_duration("PT1H30M").unwrap(), 5_400_000);
        assert_eq!(parse_duration("pt10m").unwrap(), 600_000);
        assert_eq!(parse_duration("PT0.5S").unwrap(), 500);
        assert_eq!(parse_duration("P1DT2H3M4.005S").unwrap(), 93_784_005);
        assert_eq!(parse_duration("-PT1M").unwrap(), -60_000);
        assert_eq!(parse_duration("PT-1.5S").unwrap(), -1_500);
        for bad in ["", "P", "PT", "1H", "PT1X", "P1H", "PT1.1234567891S"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
