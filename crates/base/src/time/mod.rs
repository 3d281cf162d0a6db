//! 90 kHz media time ([`Time`], [`Duration`]) and RFC 3339 wall-clock text ([`rfc3339`]).
//!
//! Every video timestamp in Vantage (a frame's `pts`, a segment's media duration, a run's
//! start) is a count of 90 kHz ticks, the RTP video clock. The newtypes keep them apart from
//! other integers, convert to and from [`std::time::Duration`], and print and parse as
//! `1h02m03.040s` (the form logs and tests use); plain seconds (`3.04`) parse too.
#![deny(clippy::indexing_slicing)]

pub mod rfc3339;

use crate::{Error, err};
use std::fmt;
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};
use std::str::FromStr;

/// Ticks per second of the 90 kHz clock.
pub const TICKS_PER_SEC: i64 = 90_000;
/// Ticks per millisecond.
const TICKS_PER_MS: i64 = 90;

/// A point on a 90 kHz timeline (e.g. a frame's presentation time), in ticks from the timeline's
/// origin (which may be before it: ticks may be negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i64);

/// A signed span of 90 kHz ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Time {
    pub const ZERO: Time = Time(0);
    pub const MIN: Time = Time(i64::MIN);
    pub const MAX: Time = Time(i64::MAX);

    /// `secs` whole seconds after the origin (saturating).
    pub const fn from_secs(secs: i64) -> Time {
        Time(secs.saturating_mul(TICKS_PER_SEC))
    }

    pub const fn ticks(self) -> i64 {
        self.0
    }

    /// The span from the origin to this point.
    pub const fn since_origin(self) -> Duration {
        Duration(self.0)
    }

    pub fn checked_add(self, d: Duration) -> Option<Time> {
        self.0.checked_add(d.0).map(Time)
    }

    pub fn checked_sub(self, d: Duration) -> Option<Time> {
        self.0.checked_sub(d.0).map(Time)
    }

    pub fn saturating_add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d.0))
    }

    pub fn saturating_sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(d.0))
    }

    /// The span between two points (`self - earlier`), saturating.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);
    pub const MAX: Duration = Duration(i64::MAX);

    pub const fn from_ticks(ticks: i64) -> Duration {
        Duration(ticks)
    }

    /// Whole seconds (saturating).
    pub const fn from_secs(secs: i64) -> Duration {
        Duration(secs.saturating_mul(TICKS_PER_SEC))
    }

    /// Whole milliseconds (saturating).
    pub const fn from_millis(ms: i64) -> Duration {
        Duration(ms.saturating_mul(TICKS_PER_MS))
    }

    pub const fn ticks(self) -> i64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / TICKS_PER_SEC as f64
    }

    /// Milliseconds, rounded towards zero.
    pub const fn as_millis(self) -> i64 {
        self.0 / TICKS_PER_MS
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn abs(self) -> Duration {
        Duration(self.0.saturating_abs())
    }

    pub fn checked_add(self, o: Duration) -> Option<Duration> {
        self.0.checked_add(o.0).map(Duration)
    }

    pub fn checked_sub(self, o: Duration) -> Option<Duration> {
        self.0.checked_sub(o.0).map(Duration)
    }

    pub fn saturating_add(self, o: Duration) -> Duration {
        Duration(self.0.saturating_add(o.0))
    }

    pub fn saturating_sub(self, o: Duration) -> Duration {
        Duration(self.0.saturating_sub(o.0))
    }

    /// The nearest tick to a `std` duration (saturating at [`Duration::MAX`]).
    pub fn from_std(d: std::time::Duration) -> Duration {
        let ticks = (d.as_nanos() * TICKS_PER_SEC as u128 + 500_000_000) / 1_000_000_000;
        Duration(i64::try_from(ticks).unwrap_or(i64::MAX))
    }

    /// As a `std` duration (exact to the nanosecond, rounded down); `None` when negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        let ticks = u64::try_from(self.0).ok()?;
        let secs = ticks / TICKS_PER_SEC as u64;
        let rem = ticks % TICKS_PER_SEC as u64;
        // rem < 90_000, so rem * 1e9 / 90_000 < 1e9 fits a u32.
        let nanos = u32::try_from(rem * 1_000_000_000 / TICKS_PER_SEC as u64).ok()?;
        Some(std::time::Duration::new(secs, nanos))
    }

    /// As a `std` duration, negative spans as zero.
    pub fn to_std_saturating(self) -> std::time::Duration {
        self.to_std().unwrap_or_default()
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Duration {
        Duration::from_std(d)
    }
}

impl TryFrom<Duration> for std::time::Duration {
    type Error = Error;
    fn try_from(d: Duration) -> Result<Self, Error> {
        d.to_std()
            .ok_or_else(|| err!(InvalidArgument, "negative duration {d}"))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    /// Panics on overflow in debug builds like integer addition; use
    /// [`Time::saturating_add`]/[`Time::checked_add`] with untrusted values.
    fn add(self, d: Duration) -> Time {
        Time(self.0 + d.0)
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        Time(self.0 - d.0)
    }
}

impl Sub for Time {
    type Output = Duration;
    fn sub(self, o: Time) -> Duration {
        Duration(self.0 - o.0)
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        self.0 += d.0;
    }
}

impl SubAssign<Duration> for Time {
    fn sub_assign(&mut self, d: Duration) {
        self.0 -= d.0;
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, o: Duration) -> Duration {
        Duration(self.0 + o.0)
    }
}

impl Sub for Duration {
    type Output = Duration;
    fn sub(self, o: Duration) -> Duration {
        Duration(self.0 - o.0)
    }
}

impl AddAssign for Duration {
    fn add_assign(&mut self, o: Duration) {
        self.0 += o.0;
    }
}

impl SubAssign for Duration {
    fn sub_assign(&mut self, o: Duration) {
        self.0 -= o.0;
    }
}

impl Mul<i64> for Duration {
    type Output = Duration;
    fn mul(self, n: i64) -> Duration {
        Duration(self.0 * n)
    }
}

impl Neg for Duration {
    type Output = Duration;
    fn neg(self) -> Duration {
        Duration(-self.0)
    }
}

/// `[-][Hh][MMm]SS.mmms`: hours and minutes only when non-zero (minutes two digits after hours),
/// milliseconds always, rounded towards zero: `1h02m03.040s`, `2m03.000s`, `0.040s`, `-3.500s`.
fn fmt_ticks(ticks: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if ticks < 0 { "-" } else { "" };
    let ms = ticks.unsigned_abs() / TICKS_PER_MS as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        write!(f, "{sign}{h}h{m:02}m{s:02}.{ms:03}s")
    } else if m > 0 {
        write!(f, "{sign}{m}m{s:02}.{ms:03}s")
    } else {
        write!(f, "{sign}{s}.{ms:03}s")
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ticks(self.0, f)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ticks(self.0, f)
    }
}

/// Parses what [`fmt::Display`] prints (`1h02m03.040s`, `2m3s`, `3.04s`, `-1h`) and plain seconds
/// (`3.04`, `90`), into ticks rounded to the nearest. Fractions only on the seconds.
fn parse_ticks(s: &str) -> Result<i64, Error> {
    let bad = || {
        err!(
            InvalidArgument,
            "`{}` is not a time like 1h02m03.040s or 3.04 (seconds)",
            crate::time::rfc3339::truncate(s, 40)
        )
    };
    let t = s.trim();
    let (neg, mut rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    let mut last_unit = 0u8; // 0 none, 1 h, 2 m, 3 s
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                let (frac, a) = a.split_at(n);
                if frac.is_empty() {
                    return Err(bad());
                }
                (Some(frac), a)
            }
            None => (None, after),
        };
        if int.is_empty() && frac.is_none() {
            return Err(bad());
        }
        let (unit, after) = if let Some(a) = after.strip_prefix('h') {
            (1u8, a)
        } else if let Some(a) = after.strip_prefix('m') {
            (2, a)
        } else if let Some(a) = after.strip_prefix('s') {
            (3, a)
        } else if after.is_empty() {
            (3, after) // plain seconds, only as the last part
        } else {
            return Err(bad());
        };
        if unit <= last_unit || (frac.is_some() && unit != 3) {
            return Err(bad());
        }
        last_unit = unit;
        // Up to 18 integer digits, so the i128 arithmetic below cannot overflow.
        if int.len() > 18 {
            return Err(bad());
        }
        let int: i128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let unit_ticks: i128 = match unit {
            1 => 3600 * i128::from(TICKS_PER_SEC),
            2 => 60 * i128::from(TICKS_PER_SEC),
            _ => i128::from(TICKS_PER_SEC),
        };
        total += int * unit_ticks;
        if let Some(frac) = frac {
            // Nearest tick of the fraction; digits past 18 cannot change it.
            let digits = frac.get(..frac.len().min(18)).unwrap_or(frac);
            let num: i128 = digits.parse().map_err(|_| bad())?;
            let den = 10i128.pow(digits.len() as u32);
            total += (num * unit_ticks + den / 2) / den;
        }
        if total > i128::from(i64::MAX) {
            return Err(bad());
        }
        rest = after;
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).map_err(|_| bad())
}

impl FromStr for Duration {
    type Err = Error;
    fn from_str(s: &str) -> Result<Duration, Error> {
        parse_ticks(s).map(Duration)
    }
}

impl FromStr for Time {
    type Err = Error;
    fn from_str(s: &str) -> Result<Time, Error> {
        parse_ticks(s).map(Time)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests index what they just built or checked
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn arithmetic() {
        let t = Time::from_secs(10);
        let d = Duration::from_millis(40);
        assert_eq!(t + d, Time(900_000 + 3_600));
        assert_eq!((t + d) - t, d);
        assert_eq!(t - d, Time(900_000 - 3_600));
        assert_eq!(d * 25, Duration::from_secs(1));
        assert_eq!(-d, Duration(-3_600));
        let mut u = t;
        u += d;
        u -= d;
        assert_eq!(u, t);
        assert_eq!(Time::MAX.saturating_add(d), Time::MAX);
        assert_eq!(Time::MAX.checked_add(d), None);
        assert_eq!(Time(5).saturating_since(Time(2)), Duration(3));
        assert_eq!(Duration::from_secs(3).as_secs_f64(), 3.0);
        assert_eq!(Duration(3_689).as_millis(), 40);
    }

    #[test]
    fn std_conversions() {
        let d = Duration::from_std(std::time::Duration::from_millis(40));
        assert_eq!(d, Duration(3_600));
        assert_eq!(d.to_std(), Some(std::time::Duration::from_millis(40)));
        assert_eq!(Duration(-1).to_std(), None);
        assert_eq!(Duration(-1).to_std_saturating(), std::time::Duration::ZERO);
        assert!(std::time::Duration::try_from(Duration(-1)).is_err());
        // One tick is 11111.1 ns: rounded down to std, to the nearest back.
        assert_eq!(
            Duration(1).to_std(),
            Some(std::time::Duration::from_nanos(11_111))
        );
        assert_eq!(
            Duration::from_std(std::time::Duration::from_nanos(11_111)),
            Duration(1)
        );
        assert_eq!(Duration::from_std(std::time::Duration::MAX), Duration::MAX);
        for ticks in [0, 1, 89, 90, 3_600, 90_000, 123_456_789] {
            let d = Duration(ticks);
            assert_eq!(Duration::from(d.to_std_saturating()), d, "{ticks}");
        }
    }

    #[test]
    fn display_and_parse() {
        let d = Duration::from_secs(3723) + Duration::from_millis(40);
        assert_eq!(d.to_string(), "1h02m03.040s");
        assert_eq!(Duration::from_secs(123).to_string(), "2m03.000s");
        assert_eq!(Duration::from_millis(40).to_string(), "0.040s");
        assert_eq!(Duration::from_millis(-3500).to_string(), "-3.500s");
        assert_eq!(Duration(89).to_string(), "0.000s");
        assert_eq!(Time::from_secs(7200).to_string(), "2h00m00.000s");
        assert_eq!("1h02m03.040s".parse::<Duration>().ok(), Some(d));
        assert_eq!(
            "3.04".parse::<Duration>().ok(),
            Some(Duration::from_millis(3040))
        );
        assert_eq!("90".parse::<Duration>().ok(), Some(Duration::from_secs(90)));
        assert_eq!(
            "2m3s".parse::<Duration>().ok(),
            Some(Duration::from_secs(123))
        );
        assert_eq!("-1h".parse::<Time>().ok(), Some(Time::from_secs(-3600)));
        assert_eq!(" .5s ".parse::<Duration>().ok(), Some(Duration(45_000)));
        assert_eq!(
            "0.0000111111s".parse::<Duration>().ok(),
            Some(Duration(1)),
            "nearest tick"
        );
        for bad in [
            "",
            "-",
            "s",
            "1x",
            "1m1h",
            "1h1h",
            "1.5h",
            "1.s",
            "..1",
            "1s2",
            "9999999999999999999h",
            "1e3",
            "１s",
            "102481.5.5",
            "h1",
            "3 s",
        ] {
            let e = bad.parse::<Duration>().expect_err(bad);
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn display_round_trips_at_millisecond_precision() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..5_000 {
            // Whole milliseconds, up to ±1000 days.
            let ms = rng.random_range(-86_400_000_000i64..86_400_000_000);
            let d = Duration::from_millis(ms);
            let text = d.to_string();
            assert_eq!(text.parse::<Duration>().ok(), Some(d), "{text}");
            let t = Time(d.ticks());
            assert_eq!(t.to_string().parse::<Time>().ok(), Some(t), "{text}");
            // Any tick count prints the millisecond below it.
            let ticks = rng.random_range(i64::MIN / 2..i64::MAX / 2);
            let printed: Duration = Duration(ticks).to_string().parse().expect("own output");
            assert_eq!(printed, Duration(ticks / 90 * 90), "{ticks}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let alphabet: Vec<char> = "0123456789hms.-+ é".chars().collect();
        for _ in 0..20_000 {
            let n = rng.random_range(0..24);
            let s: String = (0..n)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let _ = s.parse::<Duration>();
        }
    }
}
