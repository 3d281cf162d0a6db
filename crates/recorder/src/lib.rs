//! Continuous recording (design 0006).
//!
//! Pure cores, no I/O and no clock (every `now` is an argument):
//! - [`anchor`]: maps a camera's 90 kHz media timeline onto wall-clock time with bounded slew.
//! - [`rotation`]: decides where segments are cut (key frames only, at most 60 s, staggered).
//! - [`segmenter`]: one camera's frames to segment actions (open, one fragment per GOP, close).
//! - [`retention`]: selects segments to delete (age, byte budget, emergency) honouring locks.
//! - [`scan`]: the fMP4 reader ([`media::scan`], fuzzed) over segment files, and cutting torn
//!   files back (recovery).
//!
//! I/O:
//! - [`index`]: the SQLite media index (segments, key frames, evidence locks, settings).
//! - [`writer`]: writer threads and the syncer (the fsync policy).
//! - [`recovery`]: start-up recovery after a crash or power cut.
//! - [`service`]: [`service::Recorder`], which a node starts: all of the above plus retention.

pub mod anchor;
pub mod index;
pub mod pins;
pub mod playback;
pub mod recovery;
pub mod retention;
pub mod rotation;
pub mod scan;
pub mod segmenter;
pub mod service;
#[cfg(test)]
mod testutil;
pub mod writer;

/// 90 kHz ticks per second.
pub const TICKS_PER_SEC: i64 = 90_000;
/// 90 kHz ticks per millisecond.
pub const TICKS_PER_MS: i64 = 90;

/// Wall-clock time as 90 kHz ticks since the Unix epoch (negative before it).
pub fn wall_90k(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64) * TICKS_PER_SEC + i64::from(d.subsec_nanos()) * 9 / 100_000,
        Err(e) => {
            let d = e.duration();
            -((d.as_secs() as i64) * TICKS_PER_SEC + i64::from(d.subsec_nanos()) * 9 / 100_000)
        }
    }
}

/// 90 kHz ticks since the epoch to milliseconds since the epoch (floor).
pub fn ticks_to_ms(t: i64) -> i64 {
    t.div_euclid(TICKS_PER_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn wall_clock_converts_to_90k() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(wall_90k(t), 1_700_000_000_123 * 90);
        assert_eq!(ticks_to_ms(wall_90k(t)), 1_700_000_000_123);
        assert_eq!(wall_90k(UNIX_EPOCH + Duration::from_nanos(11_112)), 1);
        assert_eq!(ticks_to_ms(-1), -1);
    }
}
