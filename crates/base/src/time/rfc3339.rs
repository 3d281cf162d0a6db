//! RFC 3339 timestamps: the one parser and formatter of wall-clock text in Vantage.
//!
//! - [`parse`]: strict RFC 3339 (`2026-11-21T08:00:00Z`, `...08:00:00.5+04:00`), as the HTTP API
//!   accepts it; [`parse_field`] names the offending field in its error.
//! - [`parse_xprotect`]: what XProtect (.NET) sends and what SOAP clients send the simulator: 0 to
//!   9 (or more, the excess ignored) fractional digits, no zone meaning UTC, offsets `±HH:MM`,
//!   `±HHMM` or `±HH`, a space for `T`, and `0001-01-01T00:00:00…` (.NET `DateTime.MinValue`,
//!   "never") as `None`.
//! - [`format`]: UTC with millisecond precision (`2026-11-21T14:02:11.123Z`), as every API
//!   response and log line shows times.
#![deny(clippy::indexing_slicing)]

use crate::{Error, err};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// At most `max` characters of `s` (for error messages quoting untrusted input).
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Strict,
    XProtect,
}

/// Strict RFC 3339 (section 5.6): `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)`, `t` and `z` in either
/// case; digits past nanoseconds are ignored; no leap second. Errors are `InvalidArgument`.
pub fn parse(s: &str) -> Result<SystemTime, Error> {
    match parse_in(s, Dialect::Strict) {
        Some(Some(t)) => Ok(t),
        _ => Err(err!(
            InvalidArgument,
            "{:?} is not an RFC 3339 time like 2026-11-21T08:00:00Z",
            truncate(s, 64)
        )),
    }
}

/// [`parse`] of a named request field: the error (`InvalidArgument`) says which field and what is
/// expected, without echoing more than 64 characters of the value.
pub fn parse_field(field: &str, s: &str) -> Result<SystemTime, Error> {
    parse(s).map_err(|_| {
        err!(
            InvalidArgument,
            "{field} must be an RFC 3339 time like 2026-11-21T08:00:00Z, not {:?}",
            truncate(s, 64)
        )
    })
}

/// The lenient dialect of XProtect and its clients (see the module docs). `Ok(None)` is .NET's
/// `DateTime.MinValue`. Errors are `InvalidArgument` naming the (truncated) input; callers
/// reading a peer's answer map them to `DataLoss`.
pub fn parse_xprotect(s: &str) -> Result<Option<SystemTime>, Error> {
    parse_in(s.trim(), Dialect::XProtect)
        .ok_or_else(|| err!(InvalidArgument, "bad timestamp {:?}", truncate(s, 64)))
}

fn parse_in(s: &str, dialect: Dialect) -> Option<Option<SystemTime>> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from.checked_add(len)?)?;
        let mut v = 0u32;
        for &c in part {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let at = |i: usize| b.get(i).copied();
    let year = num(0, 4)?;
    if at(4) != Some(b'-') || at(7) != Some(b'-') {
        return None;
    }
    let (month, day) = (num(5, 2)?, num(8, 2)?);
    match (at(10), dialect) {
        (Some(b'T' | b't'), _) | (Some(b' '), Dialect::XProtect) => {}
        _ => return None,
    }
    let hour = num(11, 2)?;
    if at(13) != Some(b':') || at(16) != Some(b':') {
        return None;
    }
    let (minute, second) = (num(14, 2)?, num(17, 2)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if at(i) == Some(b'.') {
        i += 1;
        let start = i;
        while let Some(c) = at(i).filter(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let rest = b.get(i..)?;
    let offset_secs: i32 = match (rest, dialect) {
        ([], Dialect::XProtect) => 0,
        ([b'Z' | b'z'], _) => 0,
        ([sign @ (b'+' | b'-'), tail @ ..], _) => {
            let (h, m) = match (tail.len(), dialect) {
                (5, _) if tail.get(2) == Some(&b':') => (num(i + 1, 2)?, num(i + 4, 2)?),
                (2, Dialect::XProtect) => (num(i + 1, 2)?, 0),
                (4, Dialect::XProtect) => (num(i + 1, 2)?, num(i + 3, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let v = i32::try_from(h * 3600 + m * 60).ok()?;
            if *sign == b'-' { -v } else { v }
        }
        _ => return None,
    };
    if dialect == Dialect::XProtect
        && (year, month, day, hour, minute, second) == (1, 1, 1, 0, 0, 0)
    {
        return Some(None);
    }
    let month = ::time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        ::time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    // Leap seconds (60) are refused: neither .NET nor our own formatter writes them.
    let t = ::time::Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    let offset = ::time::UtcOffset::from_whole_seconds(offset_secs).ok()?;
    let odt = ::time::PrimitiveDateTime::new(date, t).assume_offset(offset);
    Some(Some(from_unix_nanos(odt.unix_timestamp_nanos())?))
}

fn from_unix_nanos(n: i128) -> Option<SystemTime> {
    let abs = n.unsigned_abs();
    let d = Duration::new(
        u64::try_from(abs / 1_000_000_000).ok()?,
        u32::try_from(abs % 1_000_000_000).ok()?,
    );
    if n >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

/// RFC 3339 UTC with millisecond precision (`2026-11-21T14:02:11.123Z`), rounded down. A time
/// outside the years 0 to 9999 (which RFC 3339 cannot write) prints as the Unix epoch.
pub fn format(t: SystemTime) -> String {
    let dt = ::time::OffsetDateTime::from(t);
    let fmt = ::time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    match dt.year() {
        0..=9999 => dt.format(&fmt).ok(),
        _ => None,
    }
    .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// [`format`] of a time in ms since the Unix epoch (the unit SQLite rows store).
pub fn format_ms(ms: i64) -> String {
    format(crate::clock::from_unix_ms(ms))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests index what they just built or checked
mod tests {
    use super::*;
    use crate::ErrorKind;
    use rand::{Rng, SeedableRng};

    fn unix(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH)
            .map_or(-1.0, |d| d.as_secs_f64())
    }

    #[test]
    fn strict() {
        let t = parse("2025-10-27T15:03:52.807Z").expect("valid");
        assert!((unix(t) - 1_761_577_432.807).abs() < 1e-6);
        assert_eq!(parse("2025-10-27t10:03:52.807-05:00").ok(), Some(t));
        assert_eq!(parse("2025-10-27T15:03:52.8070000z").ok(), Some(t));
        assert_eq!(
            unix(parse("2023-07-20T00:00:00Z").expect("valid")),
            1_689_811_200.0
        );
        assert!(parse("1969-12-31T23:59:59Z").is_ok());
        // .NET's "never" is a real instant in RFC 3339.
        assert!(parse("0001-01-01T00:00:00Z").is_ok());
        for bad in [
            "",
            "2023-07-20",
            "2023-07-20T00:00:00",      // no zone
            "2023-07-20 00:00:00Z",     // space
            "2023-07-20T00:00:00+0400", // offset without colon
            "2023-07-20T00:00:00+04",
            "2023-07-20T00:00:00.Z",
            "2023-07-20T00:00:60Z",
            "2023-02-30T00:00:00Z",
            "2023-07-20T00:00:00ZZ",
            " 2023-07-20T00:00:00Z",
            "2023-07-20T00:00:00+24:00",
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        let e = parse_field("start", "yesterday").expect_err("bad");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            e.message(),
            "start must be an RFC 3339 time like 2026-11-21T08:00:00Z, not \"yesterday\""
        );
        let long = "x".repeat(1000);
        assert!(parse_field("end", &long).expect_err("bad").message().len() < 200);
    }

    #[test]
    fn xprotect_quirks() {
        let t = parse_xprotect("2025-10-27T15:03:52.8070000Z")
            .expect("ok")
            .expect("some");
        assert_eq!(
            parse_xprotect("2025-10-27T15:03:52.8070000").ok(),
            Some(Some(t))
        );
        assert_eq!(
            parse_xprotect(" 2025-10-27 15:03:52.807 ").ok(),
            Some(Some(t))
        );
        let z = parse_xprotect("2023-09-07T17:54:41.433Z").expect("ok");
        for o in [
            "2023-09-07T12:54:41.4330000-05:00",
            "2023-09-07T12:54:41.433-0500",
            "2023-09-07T12:54:41.433-05",
            "2023-09-07T22:24:41.433+0430",
        ] {
            assert_eq!(parse_xprotect(o).ok(), Some(z), "{o}");
        }
        assert_eq!(
            parse_xprotect("0001-01-01T00:00:00.0000000").ok(),
            Some(None)
        );
        assert_eq!(parse_xprotect("0001-01-01T00:00:00Z").ok(), Some(None));
        assert!(
            parse_xprotect("2023-07-20T00:00:00.1234567891Z")
                .expect("ok")
                .is_some()
        );
        for bad in [
            "",
            "2023",
            "2023-13-01T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00.Z",
            "2023-01-01T00:00:00ZZ",
            "2023-01-01T00:00:00+5",
            "2023-01-01T00:00:00+99:00",
            "２０２３-01-01T00:00:00Z",
            "2023-01-01T00:00:0é",
        ] {
            assert!(parse_xprotect(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_is_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_micros(1_761_577_432_807_999);
        assert_eq!(format(t), "2025-10-27T15:03:52.807Z");
        assert_eq!(format_ms(1_761_577_432_807), "2025-10-27T15:03:52.807Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn round_trips() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..5_000 {
            // Any millisecond from year 1 to 9999.
            let ms = rng.random_range(-62_135_596_800_000i64..253_402_300_799_999);
            let t = crate::clock::from_unix_ms(ms);
            let text = format(t);
            assert_eq!(parse(&text).ok(), Some(t), "{text}");
            assert_eq!(
                parse_xprotect(&text).ok(),
                Some(Some(t)).filter(|_| ms != -62_135_596_800_000),
                "{text}"
            );
            assert_eq!(crate::clock::unix_ms(parse(&text).expect("own output")), ms);
            // The same instant at any offset, with 7 digits as XProtect writes them.
            let off_min = rng.random_range(-(23 * 60 + 59)..=(23 * 60 + 59));
            let odt = ::time::OffsetDateTime::from(t)
                .to_offset(::time::UtcOffset::from_whole_seconds(off_min * 60).expect("in range"));
            let sign = if off_min < 0 { '-' } else { '+' };
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}{sign}{:02}:{:02}",
                odt.year(),
                u8::from(odt.month()),
                odt.day(),
                odt.hour(),
                odt.minute(),
                odt.second(),
                odt.nanosecond() / 100,
                off_min.unsigned_abs() / 60,
                off_min.unsigned_abs() % 60
            );
            if (0..=9999).contains(&odt.year()) {
                assert_eq!(parse(&text).ok(), Some(t), "{text}");
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let seed = "2023-09-07T12:54:41.4330000-05:00";
        let alphabet: Vec<char> = "0123456789-:T.Z+ tzé".chars().collect();
        for _ in 0..20_000 {
            let mut s: Vec<char> = seed.chars().collect();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..s.len());
                match rng.random_range(0..3) {
                    0 => s[i] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => {
                        s.remove(i);
                    }
                    _ => s.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
                }
            }
            let s: String = s.into_iter().collect();
            let _ = parse(&s);
            let _ = parse_xprotect(&s);
            let n = rng.random_range(0..=s.len());
            if let Some(prefix) = s.get(..n) {
                let _ = parse_xprotect(prefix);
            }
        }
    }
}
