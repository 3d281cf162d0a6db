//! Pins: segments a reader (playback, an HLS part, an export) may still read, which retention
//! must not delete under it (design 0008, "Pins").
//!
//! A reader pins the segments of its slices with [`Pins::pin`] and keeps the [`PinGuard`] until
//! its body ends; dropping the guard unpins. Retention asks [`Pins::claim_for_deletion`] which of
//! its chosen segments it may delete: pinned ones are refused (and counted), the rest are marked
//! as being deleted, so that a reader that found them in the index a moment earlier cannot pin
//! them any more ([`Pins::pin`] then fails with the id, and the reader answers as if the segment
//! were gone). [`Pins::deleted`] ends the mark once the row is gone.
//!
//! A pin older than the configured maximum (`playback.max_pin`) no longer protects its segment: a
//! reader that stalls for hours must not hold the disk hostage. Times are monotonic instants given
//! by the caller (from `base::Clocks`), so this module reads no clock.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    /// Segment id → (guard token, when pinned) of each reader holding it.
    pinned: HashMap<i64, Vec<(u64, Instant)>>,
    /// Segments retention has claimed and is deleting.
    deleting: HashSet<i64>,
    next_token: u64,
}

/// The pin registry of one recorder.
pub struct Pins {
    state: Mutex<State>,
    max_age: Duration,
}

impl std::fmt::Debug for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Pins")
            .field("pinned_segments", &st.pinned.len())
            .field("deleting", &st.deleting.len())
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// Held by a reader; unpins its segments when dropped.
#[must_use = "the segments are unpinned when the guard is dropped"]
pub struct PinGuard {
    pins: Arc<Pins>,
    token: u64,
    ids: Vec<i64>,
}

impl std::fmt::Debug for PinGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinGuard").field("ids", &self.ids).finish()
    }
}

impl PinGuard {
    /// The pinned segment ids.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// Restarts the maximum age of this reader's pins at `now`: a reader that is still making
    /// progress (an export writing hours of video, slowed by `exports.max_write_kib_per_s`)
    /// keeps its segments for as long as it runs, while one that stalls loses them after the
    /// maximum.
    pub fn renew(&self, now: Instant) {
        let mut st = self.pins.state.lock();
        for id in &self.ids {
            if let Some(v) = st.pinned.get_mut(id) {
                for (t, at) in v.iter_mut() {
                    if *t == self.token {
                        *at = now;
                    }
                }
            }
        }
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let mut st = self.pins.state.lock();
        for id in &self.ids {
            if let Some(v) = st.pinned.get_mut(id) {
                v.retain(|(t, _)| *t != self.token);
                if v.is_empty() {
                    st.pinned.remove(id);
                }
            }
        }
    }
}

/// What [`Pins::claim_for_deletion`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claim {
    /// May be deleted now (marked as being deleted).
    pub granted: Vec<i64>,
    /// Kept because a reader holds a pin younger than the maximum.
    pub pinned: Vec<i64>,
}

impl Pins {
    /// A registry whose pins protect for at most `max_age`.
    pub fn new(max_age: Duration) -> Arc<Self> {
        Arc::new(Pins {
            state: Mutex::new(State::default()),
            max_age,
        })
    }

    /// Pins `ids` for a reader at `now`. Fails with the first id retention is deleting: the
    /// reader must treat that segment as gone (query again, or stop there).
    pub fn pin(self: &Arc<Self>, ids: &[i64], now: Instant) -> Result<PinGuard, i64> {
        let mut st = self.state.lock();
        if let Some(&id) = ids.iter().find(|id| st.deleting.contains(id)) {
            return Err(id);
        }
        st.next_token += 1;
        let token = st.next_token;
        let mut unique: Vec<i64> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        for &id in &unique {
            st.pinned.entry(id).or_default().push((token, now));
        }
        Ok(PinGuard {
            pins: Arc::clone(self),
            token,
            ids: unique,
        })
    }

    /// Adds `ids` to an existing guard (a reader that follows a growing recording).
    pub fn extend(&self, guard: &mut PinGuard, ids: &[i64], now: Instant) -> Result<(), i64> {
        let mut st = self.state.lock();
        if let Some(&id) = ids.iter().find(|id| st.deleting.contains(id)) {
            return Err(id);
        }
        for &id in ids {
            if guard.ids.contains(&id) {
                continue;
            }
            st.pinned.entry(id).or_default().push((guard.token, now));
            guard.ids.push(id);
        }
        Ok(())
    }

    /// Takes `ids` out of a guard (a follower that has moved past them).
    pub fn release(&self, guard: &mut PinGuard, ids: &[i64]) {
        let mut st = self.state.lock();
        for id in ids {
            if let Some(v) = st.pinned.get_mut(id) {
                v.retain(|(t, _)| *t != guard.token);
                if v.is_empty() {
                    st.pinned.remove(id);
                }
            }
        }
        guard.ids.retain(|id| !ids.contains(id));
    }

    /// Whether `id` is pinned by a reader younger than the maximum at `now`.
    pub fn is_pinned(&self, id: i64, now: Instant) -> bool {
        let st = self.state.lock();
        self.live(&st, id, now)
    }

    fn live(&self, st: &State, id: i64, now: Instant) -> bool {
        st.pinned.get(&id).is_some_and(|v| {
            v.iter()
                .any(|(_, at)| now.saturating_duration_since(*at) < self.max_age)
        })
    }

    /// Retention's chosen `ids`: those not pinned are granted and marked as being deleted until
    /// [`Pins::deleted`]; the pinned ones are returned apart.
    pub fn claim_for_deletion(&self, ids: &[i64], now: Instant) -> Claim {
        let mut st = self.state.lock();
        let mut claim = Claim::default();
        for &id in ids {
            if self.live(&st, id, now) {
                claim.pinned.push(id);
            } else {
                st.deleting.insert(id);
                claim.granted.push(id);
            }
        }
        claim
    }

    /// Retention finished with `id` (deleted, or left for the next pass).
    pub fn deleted(&self, id: i64) {
        self.state.lock().deleting.remove(&id);
    }

    /// Segments pinned now (by any reader, expired pins included) and readers holding pins.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.state.lock();
        let readers: HashSet<u64> = st.pinned.values().flatten().map(|(t, _)| *t).collect();
        (st.pinned.len(), readers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_segment_is_refused_to_retention_until_the_reader_ends() {
        let t0 = Instant::now();
        let pins = Pins::new(Duration::from_secs(3600));
        let g = pins.pin(&[1, 2], t0).unwrap();
        let c = pins.claim_for_deletion(&[1, 3], t0);
        assert_eq!(c.granted, vec![3]);
        assert_eq!(c.pinned, vec![1]);
        assert_eq!(pins.counts(), (2, 1));
        drop(g);
        assert_eq!(pins.counts(), (0, 0));
        let c = pins.claim_for_deletion(&[1], t0);
        assert_eq!(c.granted, vec![1]);
    }

    #[test]
    fn a_segment_being_deleted_cannot_be_pinned() {
        let t0 = Instant::now();
        let pins = Pins::new(Duration::from_secs(3600));
        assert_eq!(pins.claim_for_deletion(&[7], t0).granted, vec![7]);
        assert_eq!(pins.pin(&[6, 7], t0).unwrap_err(), 7);
        pins.deleted(7);
        assert!(pins.pin(&[6, 7], t0).is_ok());
    }

    #[test]
    fn an_old_pin_stops_protecting_after_the_maximum() {
        let t0 = Instant::now();
        let pins = Pins::new(Duration::from_secs(60));
        let _g = pins.pin(&[1], t0).unwrap();
        assert!(pins.is_pinned(1, t0 + Duration::from_secs(59)));
        assert!(!pins.is_pinned(1, t0 + Duration::from_secs(60)));
        let c = pins.claim_for_deletion(&[1], t0 + Duration::from_secs(61));
        assert_eq!(c.granted, vec![1]);
    }

    #[test]
    fn a_renewed_pin_protects_for_another_maximum() {
        let t0 = Instant::now();
        let pins = Pins::new(Duration::from_secs(60));
        let g = pins.pin(&[1, 2], t0).unwrap();
        let other = pins.pin(&[2], t0).unwrap();
        g.renew(t0 + Duration::from_secs(50));
        let t = t0 + Duration::from_secs(100);
        assert!(pins.is_pinned(1, t) && pins.is_pinned(2, t));
        assert_eq!(pins.claim_for_deletion(&[1, 2], t).pinned, vec![1, 2]);
        assert!(!pins.is_pinned(1, t0 + Duration::from_secs(110)));
        // Only the renewing reader's pins moved.
        drop(g);
        assert!(!pins.is_pinned(2, t));
        drop(other);
    }

    #[test]
    fn two_readers_on_one_segment_both_must_end() {
        let t0 = Instant::now();
        let pins = Pins::new(Duration::from_secs(3600));
        let a = pins.pin(&[5], t0).unwrap();
        let mut b = pins.pin(&[4], t0).unwrap();
        pins.extend(&mut b, &[5, 5], t0).unwrap();
        assert_eq!(b.ids(), &[4, 5]);
        drop(a);
        assert!(pins.is_pinned(5, t0));
        pins.release(&mut b, &[4]);
        assert_eq!(b.ids(), &[5]);
        assert!(!pins.is_pinned(4, t0));
        drop(b);
        assert!(!pins.is_pinned(5, t0));
    }
}
