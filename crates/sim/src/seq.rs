//! Deterministic recorded sequences per camera: for every wall-clock hour (aligned to the epoch)
//! a generator seeded from (seed, camera id, hour) yields 0–4 sequences with gaps of minutes
//! between them; about one hour in five has no recording at all, so gaps of hours occur too.
//! Retention is 7 days before "now"; sequences still in progress are not reported.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Real sequence type GUIDs (reference §4.2, two sources agree).
pub const RECORDING: &str = "f9c62604-d0c5-4050-ae25-72de51639b14";
pub const MOTION: &str = "53cb5e33-2183-44bd-9491-8364d2457480";
pub const RECORDING_WITH_TRIGGER: &str = "0601d294-b7e5-4d93-9614-9658561ad5e4";

pub const TYPES: &[(&str, &str)] = &[
    (RECORDING, "RecordingSequence"),
    (MOTION, "MotionSequence"),
    (RECORDING_WITH_TRIGGER, "RecordingWithTriggerSequence"),
];

pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Recording,
    Motion,
    RecordingWithTrigger,
}

impl Kind {
    pub fn from_guid(g: &str) -> Option<Kind> {
        let g = g.trim();
        if g.eq_ignore_ascii_case(RECORDING) {
            Some(Kind::Recording)
        } else if g.eq_ignore_ascii_case(MOTION) {
            Some(Kind::Motion)
        } else if g.eq_ignore_ascii_case(RECORDING_WITH_TRIGGER) {
            Some(Kind::RecordingWithTrigger)
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub begin: SystemTime,
    pub trigged: SystemTime,
    pub end: SystemTime,
}

fn fnv(seed: u64, camera: &str, hour: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in camera
        .to_ascii_lowercase()
        .bytes()
        .chain(hour.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn hour_sequences(seed: u64, camera: &str, hour: u64, kind: Kind) -> Vec<Sequence> {
    let mut rng = StdRng::seed_from_u64(fnv(seed, camera, hour));
    if rng.random_range(0..5) == 0 {
        return Vec::new();
    }
    let k: u64 = rng.random_range(1..=4);
    let window_ms = 3_600_000 / k;
    let base = UNIX_EPOCH + Duration::from_secs(hour * 3600);
    let mut out = Vec::new();
    for i in 0..k {
        let start = i * window_ms + rng.random_range(0..window_ms / 3);
        let len = rng.random_range(10_000..window_ms * 2 / 3);
        let begin = base + Duration::from_millis(start);
        let end = begin + Duration::from_millis(len);
        let trig_ms = rng.random_range(1_000..10_000u64).min(len);
        let motion_start = rng.random_range(0..len / 2);
        let motion_len = rng.random_range(len / 8..len / 2).max(1_000);
        let s = match kind {
            Kind::Recording => Sequence {
                begin,
                trigged: begin,
                end,
            },
            Kind::RecordingWithTrigger => Sequence {
                begin,
                trigged: begin + Duration::from_millis(trig_ms),
                end,
            },
            Kind::Motion => {
                let b = begin + Duration::from_millis(motion_start);
                Sequence {
                    begin: b,
                    trigged: b,
                    end: b + Duration::from_millis(motion_len),
                }
            }
        };
        out.push(s);
    }
    out
}

fn hour_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 3600
}

/// Sequences of `kind` overlapping `[min, max]`, sorted by begin, at most `max_count`.
pub fn query(
    seed: u64,
    camera: &str,
    kind: Kind,
    min: SystemTime,
    max: SystemTime,
    max_count: usize,
    now: SystemTime,
) -> Vec<Sequence> {
    let oldest = now.checked_sub(RETENTION).unwrap_or(UNIX_EPOCH);
    let lo = min.max(oldest);
    let hi = max.min(now);
    if lo >= hi || max_count == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for hour in hour_of(lo)..=hour_of(hi) {
        for s in hour_sequences(seed, camera, hour, kind) {
            if s.begin >= oldest && s.end <= now && s.end > min && s.begin < max {
                out.push(s);
                if out.len() >= max_count {
                    return out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_sorted_and_bounded() {
        let now = UNIX_EPOCH + Duration::from_secs(1_761_577_432);
        let min = now - Duration::from_secs(2 * 24 * 3600);
        let a = query(7, "cam", Kind::Recording, min, now, 10_000, now);
        let b = query(7, "CAM", Kind::Recording, min, now, 10_000, now);
        assert_eq!(a, b);
        assert!(a.len() > 20, "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].end <= w[1].begin));
        assert!(a.iter().all(|s| s.begin < s.end && s.end <= now));
        let c = query(8, "cam", Kind::Recording, min, now, 10_000, now);
        assert_ne!(a, c);
        assert_eq!(query(7, "cam", Kind::Recording, min, now, 3, now).len(), 3);
        // Outside retention: nothing.
        let old = now - Duration::from_secs(30 * 24 * 3600);
        assert!(query(7, "cam", Kind::Motion, old, old + RETENTION / 7, 100, now).is_empty());
    }
}
