//! XProtect-style timestamps: 7 fractional digits (`2025-10-27T15:03:52.8070000Z`), the .NET
//! minimum without a zone (`0001-01-01T00:00:00.0000000`) and offsets (`...-05:00`).
#![deny(clippy::indexing_slicing)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::{OffsetDateTime, UtcOffset};

/// The .NET `DateTime.MinValue` as the real server prints it (no zone).
pub const DOTNET_MIN: &str = "0001-01-01T00:00:00.0000000";

fn to_odt(t: SystemTime) -> OffsetDateTime {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .replace_nanosecond(d.subsec_nanos())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn fmt_odt(t: OffsetDateTime, zone: &str) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100,
        zone
    )
}

/// `2025-10-27T15:03:52.8070000Z`
pub fn utc7(t: SystemTime) -> String {
    fmt_odt(to_odt(t), "Z")
}

/// The same instant at a fixed offset of `hours`, e.g. `2023-09-07T12:54:41.4330000-05:00`.
pub fn offset7(t: SystemTime, hours: i8) -> String {
    let off = UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC);
    let zone = format!(
        "{}{:02}:00",
        if hours < 0 { '-' } else { '+' },
        hours.unsigned_abs()
    );
    fmt_odt(to_odt(t).to_offset(off), &zone)
}

/// Parses the timestamps clients send in SOAP (`2023-07-20T00:00:00Z`, with any number of
/// fractional digits, with an offset, or without a zone meaning UTC) with the one parser of the
/// XProtect dialect, [`base::time::rfc3339::parse_xprotect`]. Times before the Unix epoch (and
/// .NET's `DateTime.MinValue`) are the epoch.
pub fn parse(s: &str) -> Option<SystemTime> {
    let t = base::time::rfc3339::parse_xprotect(s)
        .ok()?
        .unwrap_or(UNIX_EPOCH);
    Some(t.max(UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = UNIX_EPOCH + Duration::from_millis(1_761_577_432_807);
        assert_eq!(utc7(t), "2025-10-27T15:03:52.8070000Z");
        assert_eq!(offset7(t, -5), "2025-10-27T10:03:52.8070000-05:00");
        assert_eq!(parse("2025-10-27T15:03:52.8070000Z"), Some(t));
        assert_eq!(parse("2025-10-27T10:03:52.807-05:00"), Some(t));
        assert_eq!(parse("2025-10-27T15:03:52.807"), Some(t));
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse(DOTNET_MIN), Some(UNIX_EPOCH));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(UNIX_EPOCH));
    }
}
