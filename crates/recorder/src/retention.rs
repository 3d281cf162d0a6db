//! Retention: which segments to delete (design 0006, "Retention order").
//!
//! [`plan`] is pure: it takes the complete segments, the active evidence locks, the policy and the
//! current usage, and returns the deletions, oldest first. Three passes, each only over segments
//! that no active lock of the same camera overlaps (`seg.start < lock.end && lock.start < seg.end`,
//! half-open):
//! 1. **Age**: segments that ended at or before `now − retention_days` of their camera.
//! 2. **Budget**: while recordings use more than `max_usage_bytes`, the oldest remaining segments,
//!    across all cameras.
//! 3. **Emergency**: while the filesystem has less than `emergency_free_bytes` free, the oldest
//!    remaining segments, across all cameras.
//!
//! A locked segment is never selected, not even in an emergency; what cannot be freed because of
//! locks is reported as a shortfall. A segment pinned by a reader ([`plan_with_pins`]) is kept
//! the same way while the pin lasts, and counted apart.

use std::collections::{HashMap, HashSet};

/// One recorded segment as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: i64,
    pub camera_id: String,
    /// Wall-clock start and end, ms since the Unix epoch; `[start_ms, end_ms)`.
    pub start_ms: i64,
    pub end_ms: i64,
    pub bytes: u64,
}

/// An evidence lock: `[start_ms, end_ms)` of one camera must not be deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRange {
    pub camera_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The lock stops protecting at this time; `None`: until deleted.
    pub expires_at_ms: Option<i64>,
}

impl LockRange {
    fn active(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_none_or(|e| e > now_ms)
    }

    fn covers(&self, s: &SegmentInfo) -> bool {
        self.camera_id == s.camera_id && s.start_ms < self.end_ms && self.start_ms < s.end_ms
    }
}

/// Retention policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Per-camera retention in days; cameras not listed use `default_retention_days`.
    pub retention_days: HashMap<String, u32>,
    /// `None`: keep by age forever (only budget and emergency delete).
    pub default_retention_days: Option<u32>,
    /// Global byte budget for recordings.
    pub max_usage_bytes: u64,
    /// Below this many free bytes on the recordings filesystem, delete in emergency mode.
    pub emergency_free_bytes: u64,
}

impl Policy {
    /// Segments of `camera_id` that ended at or before this time are past their retention;
    /// `None`: kept by age forever.
    pub fn age_cutoff(&self, camera_id: &str, now_ms: i64) -> Option<i64> {
        let days = self
            .retention_days
            .get(camera_id)
            .copied()
            .or(self.default_retention_days)?;
        Some(now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS)))
    }
}

/// Current usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes used by recordings (the index's sum, plus open segments).
    pub used_bytes: u64,
    /// Free bytes on the recordings filesystem.
    pub free_bytes: u64,
}

/// Why a segment was selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Age,
    Budget,
    Emergency,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub id: i64,
    pub camera_id: String,
    pub start_ms: i64,
    pub bytes: u64,
    pub reason: Reason,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Oldest first (by start time, then id). Delete in this order.
    pub deletions: Vec<Deletion>,
    pub bytes_freed: u64,
    /// Free space was below the emergency threshold.
    pub emergency: bool,
    /// Bytes still over budget (or under the emergency free threshold, whichever is more) after
    /// every unlocked segment was considered: space held by locks (or open segments).
    pub shortfall_bytes: u64,
    /// Segments kept only because a lock covers them and some pass wanted them.
    pub locked_kept: usize,
    /// Segments kept only because a reader pins them and some pass wanted them.
    pub pinned_kept: usize,
}

/// Milliseconds per day.
pub const DAY_MS: i64 = 86_400_000;

/// Selects the segments to delete. `segments` are complete segments in any order.
pub fn plan(
    now_ms: i64,
    segments: &[SegmentInfo],
    locks: &[LockRange],
    policy: &Policy,
    usage: Usage,
) -> Plan {
    plan_with_pins(now_ms, segments, locks, &HashSet::new(), policy, usage)
}

/// [`plan`], where the segments in `pinned` (read by a playback or an export now, design 0008)
/// are kept as locked ones are, and counted apart in [`Plan::pinned_kept`].
pub fn plan_with_pins(
    now_ms: i64,
    segments: &[SegmentInfo],
    locks: &[LockRange],
    pinned: &HashSet<i64>,
    policy: &Policy,
    usage: Usage,
) -> Plan {
    let active: Vec<&LockRange> = locks.iter().filter(|l| l.active(now_ms)).collect();
    let mut order: Vec<&SegmentInfo> = segments.iter().collect();
    order.sort_by_key(|s| (s.start_ms, s.id));
    let is_pinned: Vec<bool> = order.iter().map(|s| pinned.contains(&s.id)).collect();
    let locked: Vec<bool> = order
        .iter()
        .zip(&is_pinned)
        .map(|(s, &p)| p || active.iter().any(|l| l.covers(s)))
        .collect();
    let mut chosen: Vec<Option<Reason>> = vec![None; order.len()];
    let mut freed: u64 = 0;
    let mut wanted_locked = vec![false; order.len()];

    // 1. Age.
    for (i, s) in order.iter().enumerate() {
        let Some(cutoff) = policy.age_cutoff(&s.camera_id, now_ms) else {
            continue;
        };
        if s.end_ms <= cutoff {
            if locked[i] {
                wanted_locked[i] = true;
            } else {
                chosen[i] = Some(Reason::Age);
                freed += s.bytes;
            }
        }
    }

    // 2. Budget, 3. Emergency: oldest remaining first, across cameras.
    let over_budget = |freed: u64| usage.used_bytes.saturating_sub(freed) > policy.max_usage_bytes;
    let emergency = usage.free_bytes < policy.emergency_free_bytes;
    let short_of_free =
        |freed: u64| usage.free_bytes.saturating_add(freed) < policy.emergency_free_bytes;
    for (i, s) in order.iter().enumerate() {
        if chosen[i].is_some() {
            continue;
        }
        let reason = if over_budget(freed) {
            Reason::Budget
        } else if short_of_free(freed) {
            Reason::Emergency
        } else {
            break;
        };
        if locked[i] {
            wanted_locked[i] = true;
            continue;
        }
        chosen[i] = Some(reason);
        freed += s.bytes;
    }
    let shortfall = usage
        .used_bytes
        .saturating_sub(freed)
        .saturating_sub(policy.max_usage_bytes)
        .max(
            policy
                .emergency_free_bytes
                .saturating_sub(usage.free_bytes.saturating_add(freed)),
        );

    let deletions = order
        .iter()
        .zip(&chosen)
        .filter_map(|(s, r)| {
            r.map(|reason| Deletion {
                id: s.id,
                camera_id: s.camera_id.clone(),
                start_ms: s.start_ms,
                bytes: s.bytes,
                reason,
            })
        })
        .collect();
    Plan {
        deletions,
        bytes_freed: freed,
        emergency,
        shortfall_bytes: shortfall,
        locked_kept: wanted_locked
            .iter()
            .zip(&is_pinned)
            .filter(|&(&w, &p)| w && !p)
            .count(),
        pinned_kept: wanted_locked
            .iter()
            .zip(&is_pinned)
            .filter(|&(&w, &p)| w && p)
            .count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const MIN: i64 = 60_000;

    /// `n` one-minute segments of `cam` from `start_ms`, ids from `id0`.
    fn segs(cam: &str, id0: i64, start_ms: i64, n: i64, bytes: u64) -> Vec<SegmentInfo> {
        (0..n)
            .map(|i| SegmentInfo {
                id: id0 + i,
                camera_id: cam.to_owned(),
                start_ms: start_ms + i * MIN,
                end_ms: start_ms + (i + 1) * MIN,
                bytes,
            })
            .collect()
    }

    fn lock(cam: &str, start_ms: i64, end_ms: i64) -> LockRange {
        LockRange {
            camera_id: cam.to_owned(),
            start_ms,
            end_ms,
            expires_at_ms: None,
        }
    }

    fn ids(p: &Plan) -> Vec<i64> {
        p.deletions.iter().map(|d| d.id).collect()
    }

    fn roomy() -> Usage {
        Usage {
            used_bytes: 0,
            free_bytes: u64::MAX / 2,
        }
    }

    fn policy(days: Option<u32>) -> Policy {
        Policy {
            default_retention_days: days,
            max_usage_bytes: u64::MAX / 2,
            ..Policy::default()
        }
    }

    #[test]
    fn age_deletes_segments_entirely_older_than_retention() {
        // 10 segments starting 1 day + 5 min ago: the first 5 end at or before the cutoff.
        let s = segs("a", 1, NOW - DAY_MS - 5 * MIN, 10, 100);
        let p = plan(NOW, &s, &[], &policy(Some(1)), roomy());
        assert_eq!(ids(&p), vec![1, 2, 3, 4, 5]);
        assert!(p.deletions.iter().all(|d| d.reason == Reason::Age));
        assert_eq!(p.bytes_freed, 500);
        assert!(!p.emergency);
        // No retention_days: nothing by age.
        let p = plan(NOW, &s, &[], &policy(None), roomy());
        assert!(p.deletions.is_empty());
    }

    #[test]
    fn per_camera_retention_days() {
        let mut s = segs("short", 1, NOW - 3 * DAY_MS, 3, 10);
        s.extend(segs("long", 100, NOW - 3 * DAY_MS, 3, 10));
        let mut pol = policy(Some(30));
        pol.retention_days.insert("short".into(), 2);
        let p = plan(NOW, &s, &[], &pol, roomy());
        assert_eq!(ids(&p), vec![1, 2, 3]);
    }

    #[test]
    fn lock_spanning_a_segment_boundary_keeps_both_segments() {
        let s = segs("a", 1, NOW - 10 * DAY_MS, 6, 100);
        // Lock from the middle of segment 2 to the middle of segment 4: 2, 3, 4 kept.
        let base = NOW - 10 * DAY_MS;
        let locks = [lock("a", base + MIN + MIN / 2, base + 3 * MIN + MIN / 2)];
        let p = plan(NOW, &s, &locks, &policy(Some(1)), roomy());
        assert_eq!(ids(&p), vec![1, 5, 6]);
        assert_eq!(p.locked_kept, 3);
        // Half-open: a lock ending exactly at segment 2's start does not hold segment 2.
        let locks = [lock("a", base, base + MIN)];
        let p = plan(NOW, &s, &locks, &policy(Some(1)), roomy());
        assert_eq!(ids(&p), vec![2, 3, 4, 5, 6]);
        // A lock on another camera protects nothing here.
        let locks = [lock("b", base, base + 6 * MIN)];
        let p = plan(NOW, &s, &locks, &policy(Some(1)), roomy());
        assert_eq!(p.deletions.len(), 6);
    }

    #[test]
    fn expired_lock_no_longer_protects() {
        let s = segs("a", 1, NOW - 10 * DAY_MS, 2, 100);
        let mut l = lock("a", NOW - 10 * DAY_MS, NOW);
        l.expires_at_ms = Some(NOW);
        let p = plan(NOW, &s, &[l.clone()], &policy(Some(1)), roomy());
        assert_eq!(ids(&p), vec![1, 2]);
        l.expires_at_ms = Some(NOW + 1);
        let p = plan(NOW, &s, &[l], &policy(Some(1)), roomy());
        assert!(p.deletions.is_empty());
    }

    #[test]
    fn budget_deletes_oldest_across_cameras_in_order() {
        // Two cameras interleaved in time; 10 segments of 100 bytes each, budget 650.
        let base = NOW - 60 * MIN;
        let mut s = segs("a", 1, base, 5, 100);
        s.extend(segs("b", 11, base + MIN / 2, 5, 100));
        let mut pol = policy(None);
        pol.max_usage_bytes = 650;
        let usage = Usage {
            used_bytes: 1000,
            free_bytes: 1 << 40,
        };
        let p = plan(NOW, &s, &[], &pol, usage);
        assert_eq!(ids(&p), vec![1, 11, 2, 12]);
        assert!(p.deletions.iter().all(|d| d.reason == Reason::Budget));
        assert_eq!(p.bytes_freed, 400);
        assert_eq!(p.shortfall_bytes, 0);
        // A lock on camera a's first two segments: b's are taken instead.
        let locks = [lock("a", base, base + 2 * MIN)];
        let p = plan(NOW, &s, &locks, &pol, usage);
        assert_eq!(ids(&p), vec![11, 12, 3, 13]);
        assert_eq!((p.locked_kept, p.pinned_kept), (2, 0));
        // A reader pins camera a's first segment and b's second: the budget takes the next
        // oldest instead, and the pinned ones are counted apart from locked ones.
        let pinned = HashSet::from([1, 12]);
        let p = plan_with_pins(NOW, &s, &locks[..0], &pinned, &pol, usage);
        assert_eq!(ids(&p), vec![11, 2, 3, 13]);
        assert_eq!((p.locked_kept, p.pinned_kept), (0, 2));
    }

    #[test]
    fn age_then_budget_results_are_merged_oldest_first() {
        let base = NOW - 5 * DAY_MS;
        let mut s = segs("old", 1, base, 2, 100); // past its 1-day retention
        s.extend(segs("keep", 10, base - MIN, 3, 100)); // 30-day camera, but older
        let mut pol = policy(Some(30));
        pol.retention_days.insert("old".into(), 1);
        pol.max_usage_bytes = 250;
        let usage = Usage {
            used_bytes: 500,
            free_bytes: 1 << 40,
        };
        let p = plan(NOW, &s, &[], &pol, usage);
        // Age frees 1 and 2 (200), budget then takes the oldest remaining (10) to reach 200 ≤ 250.
        assert_eq!(ids(&p), vec![10, 1, 2]);
        let reasons: Vec<Reason> = p.deletions.iter().map(|d| d.reason).collect();
        assert_eq!(reasons, vec![Reason::Budget, Reason::Age, Reason::Age]);
    }

    #[test]
    fn emergency_frees_to_threshold_but_never_touches_locks() {
        let base = NOW - 30 * MIN;
        let s = segs("a", 1, base, 10, 1_000);
        let mut pol = policy(None);
        pol.emergency_free_bytes = 5_500;
        let usage = Usage {
            used_bytes: 10_000,
            free_bytes: 2_000,
        };
        let p = plan(NOW, &s, &[], &pol, usage);
        assert!(p.emergency);
        assert_eq!(ids(&p), vec![1, 2, 3, 4]);
        assert!(p.deletions.iter().all(|d| d.reason == Reason::Emergency));
        assert_eq!(p.shortfall_bytes, 0);
        // Everything but segment 10 locked: only 10 goes, and the rest is a shortfall.
        let locks = [lock("a", base, base + 9 * MIN)];
        let p = plan(NOW, &s, &locks, &pol, usage);
        assert!(p.emergency);
        assert_eq!(ids(&p), vec![10]);
        assert_eq!(p.shortfall_bytes, 5_500 - 3_000);
        assert_eq!(p.locked_kept, 9);
    }

    #[test]
    fn nothing_to_do_when_within_budget_and_space() {
        let s = segs("a", 1, NOW - MIN * 10, 10, 1_000);
        let mut pol = policy(Some(7));
        pol.max_usage_bytes = 10_000;
        pol.emergency_free_bytes = 1_000;
        let usage = Usage {
            used_bytes: 10_000,
            free_bytes: 1_000,
        };
        let p = plan(NOW, &s, &[], &pol, usage);
        assert_eq!(p, Plan::default());
    }
}
