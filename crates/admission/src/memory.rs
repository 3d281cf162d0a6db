//! The in-memory admission table of a single node: one mutex, so every decision is atomic.

use crate::*;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use tokio::sync::watch;

#[derive(Default)]
struct State {
    by_id: HashMap<ReservationId, Reservation>,
    /// (user, camera, quality) -> id, for idempotent repeats (non-ephemeral only).
    by_key: HashMap<(String, CameraId, Quality), ReservationId>,
    by_session: HashMap<SessionId, ReservationId>,
    /// (expires_at, id), for expiry without scanning.
    expiry: BTreeSet<(SystemTime, ReservationId)>,
    per_agency: HashMap<String, u32>,
    per_user: HashMap<String, u32>,
    total: u32,
}

impl State {
    fn insert(&mut self, r: Reservation) {
        *self.per_agency.entry(r.agency.clone()).or_insert(0) += 1;
        *self.per_user.entry(r.user_id.clone()).or_insert(0) += 1;
        self.total += 1;
        if !r.ephemeral {
            self.by_key.insert(
                (r.user_id.clone(), r.camera_id.clone(), r.quality),
                r.id.clone(),
            );
        }
        self.expiry.insert((r.expires_at, r.id.clone()));
        self.by_id.insert(r.id.clone(), r);
    }

    fn remove(&mut self, id: &str) -> Option<Reservation> {
        let r = self.by_id.remove(id)?;
        decrement(&mut self.per_agency, &r.agency);
        decrement(&mut self.per_user, &r.user_id);
        self.total = self.total.saturating_sub(1);
        if !r.ephemeral {
            self.by_key
                .remove(&(r.user_id.clone(), r.camera_id.clone(), r.quality));
        }
        if let Some(s) = &r.session {
            self.by_session.remove(s);
        }
        self.expiry.remove(&(r.expires_at, r.id.clone()));
        Some(r)
    }

    fn set_expiry(&mut self, id: &str, expires_at: SystemTime) -> Option<Reservation> {
        let r = self.by_id.get_mut(id)?;
        self.expiry.remove(&(r.expires_at, r.id.clone()));
        r.expires_at = expires_at;
        self.expiry.insert((expires_at, r.id.clone()));
        Some(r.clone())
    }
}

fn decrement(m: &mut HashMap<String, u32>, k: &str) {
    if let Some(v) = m.get_mut(k) {
        *v = v.saturating_sub(1);
        if *v == 0 {
            m.remove(k);
        }
    }
}

/// The single-node admission table.
pub struct MemoryAdmission {
    limits: Limits,
    state: Mutex<State>,
    changes: watch::Sender<u64>,
}

impl MemoryAdmission {
    pub fn new(limits: Limits) -> Self {
        MemoryAdmission {
            limits,
            state: Mutex::new(State::default()),
            changes: watch::Sender::new(0),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn changed(&self) {
        self.changes.send_modify(|v| *v += 1);
    }
}

impl Admission for MemoryAdmission {
    fn reserve(&self, req: &Request<'_>, now: SystemTime) -> Result<Admitted, Denied> {
        let lease = self.limits.lease;
        let mut st = self.state.lock();
        if !req.ephemeral {
            let key = (req.user_id.to_owned(), req.camera_id.clone(), req.quality);
            if let Some(id) = st.by_key.get(&key).cloned()
                && let Some(r) = st.set_expiry(&id, now + lease)
            {
                return Ok(Admitted::Existing(r));
            }
        }
        let agency_limit = self.limits.agencies.get(req.agency).copied().unwrap_or(0);
        let agency_now = st.per_agency.get(req.agency).copied().unwrap_or(0);
        if agency_now >= agency_limit {
            return Err(Denied::Agency {
                agency: req.agency.to_owned(),
                current: agency_now,
                limit: agency_limit,
            });
        }
        if st.total >= self.limits.max_streams {
            return Err(Denied::Global {
                current: st.total,
                limit: self.limits.max_streams,
            });
        }
        let user_now = st.per_user.get(req.user_id).copied().unwrap_or(0);
        if user_now >= self.limits.max_streams_per_user {
            return Err(Denied::User {
                user_id: req.user_id.to_owned(),
                current: user_now,
                limit: self.limits.max_streams_per_user,
            });
        }
        let r = Reservation {
            // Time-ordered (v7): audit-log index inserts stay append-mostly, and ids sort by creation.
            id: uuid::Uuid::now_v7().simple().to_string().into(),
            camera_id: req.camera_id.clone(),
            agency: req.agency.to_owned(),
            user_id: req.user_id.to_owned(),
            quality: req.quality,
            created_at: now,
            expires_at: now + lease,
            session: None,
            ephemeral: req.ephemeral,
        };
        st.insert(r.clone());
        drop(st);
        self.changed();
        Ok(Admitted::Created(r))
    }

    fn heartbeat(&self, id: &str, now: SystemTime) -> Option<Reservation> {
        let mut st = self.state.lock();
        let r = st.by_id.get(id)?;
        if r.expires_at <= now {
            // Lapsed but not yet swept: it is gone for the client.
            return None;
        }
        st.set_expiry(id, now + self.limits.lease)
    }

    fn renew(&self, seen: &[(ReservationId, SystemTime)], now: SystemTime) -> usize {
        let lease = self.limits.lease;
        let mut st = self.state.lock();
        let mut n = 0;
        for (id, at) in seen {
            let new = *at + lease;
            let due = st.by_id.get(id).is_some_and(|r| {
                r.expires_at > now && r.expires_at < now + lease / 2 && new > r.expires_at
            });
            if due && st.set_expiry(id, new).is_some() {
                n += 1;
            }
        }
        n
    }

    fn release(&self, id: &str) -> Option<Reservation> {
        let r = self.state.lock().remove(id)?;
        self.changed();
        Some(r)
    }

    fn expire(&self, now: SystemTime) -> Vec<Reservation> {
        let mut st = self.state.lock();
        let mut out = Vec::new();
        while let Some((t, id)) = st.expiry.first().cloned() {
            if t > now {
                break;
            }
            match st.remove(&id) {
                Some(r) => out.push(r),
                None => {
                    st.expiry.pop_first();
                }
            }
        }
        drop(st);
        if !out.is_empty() {
            self.changed();
        }
        out
    }

    fn get(&self, id: &str) -> Option<Reservation> {
        self.state.lock().by_id.get(id).cloned()
    }

    fn list(&self) -> Vec<Reservation> {
        let mut v: Vec<Reservation> = self.state.lock().by_id.values().cloned().collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        v
    }

    fn attach_session(&self, id: &str, session: &SessionId) -> Option<Option<SessionId>> {
        let mut st = self.state.lock();
        let r = st.by_id.get_mut(id)?;
        let previous = r.session.replace(session.clone());
        let rid = r.id.clone();
        if let Some(p) = &previous {
            st.by_session.remove(p);
        }
        st.by_session.insert(session.clone(), rid);
        Some(previous)
    }

    fn session_ended(&self, session: &SessionId) -> Option<Reservation> {
        let mut st = self.state.lock();
        let id = st.by_session.remove(session)?;
        let ephemeral = {
            let r = st.by_id.get_mut(&id)?;
            r.session = None;
            r.ephemeral
        };
        if !ephemeral {
            return None;
        }
        let r = st.remove(&id);
        drop(st);
        self.changed();
        r
    }

    fn stats(&self) -> Stats {
        let st = self.state.lock();
        Stats {
            active_streams: st.total,
            max_streams: self.limits.max_streams,
            per_agency: self
                .limits
                .agencies
                .iter()
                .map(|(a, limit)| AgencyCount {
                    agency: a.clone(),
                    current: st.per_agency.get(a).copied().unwrap_or(0),
                    limit: *limit,
                })
                .collect(),
        }
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn limits() -> Limits {
        Limits {
            max_streams: 500,
            max_streams_per_user: 16,
            lease: Duration::from_secs(60),
            agencies: [
                ("DUBAI_POLICE", 50),
                ("METRO", 30),
                ("BUS", 20),
                ("OTHER", 400),
            ]
            .into_iter()
            .map(|(a, l)| (a.to_owned(), l))
            .collect(),
        }
    }

    fn req<'a>(camera: &'a str, agency: &'a str, user: &'a str) -> Request<'a> {
        Request {
            camera_id: camera.into(),
            agency,
            user_id: user,
            quality: Quality::Auto,
            ephemeral: false,
        }
    }

    fn id(a: Result<Admitted, Denied>) -> ReservationId {
        a.expect("admitted").reservation().id.clone()
    }

    #[test]
    fn lease_expires_unless_renewed_by_heartbeat() {
        let a = MemoryAdmission::new(limits());
        let r1 = id(a.reserve(&req("c1", "METRO", "u1"), at(0)));
        let r2 = id(a.reserve(&req("c2", "METRO", "u1"), at(0)));
        assert_eq!(a.get(&r1).unwrap().expires_at, at(60));
        // Heartbeat at 50 s moves r1's lease to 110 s.
        assert_eq!(a.heartbeat(&r1, at(50)).unwrap().expires_at, at(110));
        assert!(a.expire(at(59)).is_empty());
        let gone = a.expire(at(60));
        assert_eq!(gone.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&r2]);
        assert_eq!(a.stats().active_streams, 1);
        assert!(
            a.heartbeat(&r2, at(61)).is_none(),
            "an expired lease cannot be renewed"
        );
        assert!(a.expire(at(109)).is_empty());
        assert_eq!(a.expire(at(110)).len(), 1);
        assert_eq!(a.stats().active_streams, 0);
        assert!(a.stats().per_agency.iter().all(|c| c.current == 0));
    }

    #[test]
    fn a_lapsed_lease_is_gone_even_before_the_sweep() {
        let a = MemoryAdmission::new(limits());
        let r = id(a.reserve(&req("c1", "BUS", "u1"), at(0)));
        assert!(a.heartbeat(&r, at(60)).is_none());
    }

    #[test]
    fn renew_only_touches_leases_past_their_half() {
        let a = MemoryAdmission::new(limits());
        let r = id(a.reserve(&req("c1", "BUS", "u1"), at(0)));
        let seen = |t| vec![(r.clone(), at(t))];
        assert_eq!(a.renew(&seen(10), at(10)), 0, "50 s left: nothing to do");
        // Renewed from when the viewer was last heard of, not from now.
        assert_eq!(a.renew(&seen(30), at(31)), 1);
        assert_eq!(a.get(&r).unwrap().expires_at, at(90));
        assert_eq!(a.renew(&seen(20), at(61)), 0, "never backwards");
        assert_eq!(a.renew(&[("nope".into(), at(31))], at(31)), 0);
        assert_eq!(
            a.renew(&seen(89), at(95)),
            0,
            "an expired lease stays expired"
        );
    }

    #[test]
    fn repeated_reserve_returns_the_existing_reservation() {
        let a = MemoryAdmission::new(limits());
        let first = a.reserve(&req("c1", "BUS", "u1"), at(0)).unwrap();
        let again = a.reserve(&req("c1", "BUS", "u1"), at(10)).unwrap();
        assert!(matches!(first, Admitted::Created(_)));
        let Admitted::Existing(r) = again else {
            panic!("expected the existing reservation")
        };
        assert_eq!(r.id, first.reservation().id);
        assert_eq!(r.expires_at, at(70), "a retry renews the lease");
        assert_eq!(a.stats().active_streams, 1);
        // Another quality is another stream.
        let hi = Request {
            quality: Quality::High,
            ..req("c1", "BUS", "u1")
        };
        assert!(matches!(a.reserve(&hi, at(0)), Ok(Admitted::Created(_))));
        assert_eq!(a.stats().active_streams, 2);
    }

    #[test]
    fn each_limit_denies_with_its_counts() {
        let mut l = limits();
        l.max_streams = 5;
        l.max_streams_per_user = 3;
        l.agencies.insert("BUS".into(), 2);
        let a = MemoryAdmission::new(l);
        a.reserve(&req("c1", "BUS", "u1"), at(0)).unwrap();
        a.reserve(&req("c2", "BUS", "u2"), at(0)).unwrap();
        assert_eq!(
            a.reserve(&req("c3", "BUS", "u3"), at(0)),
            Err(Denied::Agency {
                agency: "BUS".into(),
                current: 2,
                limit: 2
            })
        );
        a.reserve(&req("c4", "METRO", "u1"), at(0)).unwrap();
        a.reserve(&req("c5", "METRO", "u1"), at(0)).unwrap();
        assert_eq!(
            a.reserve(&req("c6", "METRO", "u1"), at(0)),
            Err(Denied::User {
                user_id: "u1".into(),
                current: 3,
                limit: 3
            })
        );
        a.reserve(&req("c7", "METRO", "u4"), at(0)).unwrap();
        let d = a.reserve(&req("c8", "METRO", "u5"), at(0)).unwrap_err();
        assert_eq!(
            d,
            Denied::Global {
                current: 5,
                limit: 5
            }
        );
        assert_eq!(d.code(), "GLOBAL_LIMIT_REACHED");
        assert!(matches!(
            a.reserve(&req("c9", "NO_SUCH_AGENCY", "u6"), at(0)),
            Err(Denied::Agency { limit: 0, .. })
        ));
    }

    #[test]
    fn ephemeral_reservations_end_with_their_session() {
        let a = MemoryAdmission::new(limits());
        let e = Request {
            ephemeral: true,
            ..req("c1", "OTHER", "wall-1")
        };
        let r1 = id(a.reserve(&e, at(0)));
        let r2 = id(a.reserve(&e, at(0)));
        assert_ne!(r1, r2, "ephemeral reservations are never shared");
        assert_eq!(a.attach_session(&r1, &"s1".into()), Some(None));
        assert_eq!(
            a.session_ended(&"s1".into()).map(|r| r.id),
            Some(r1.clone())
        );
        assert!(a.get(&r1).is_none());
        // A normal reservation survives its session (the viewer may reconnect).
        let n = id(a.reserve(&req("c1", "OTHER", "op"), at(0)));
        a.attach_session(&n, &"s2".into());
        assert_eq!(a.attach_session(&n, &"s3".into()), Some(Some("s2".into())));
        assert!(
            a.session_ended(&"s2".into()).is_none(),
            "replaced session is no longer attached"
        );
        assert!(a.session_ended(&"s3".into()).is_none());
        assert!(a.get(&n).unwrap().session.is_none());
        assert_eq!(a.stats().active_streams, 2);
    }

    #[test]
    fn changes_are_signalled_for_count_changes_only() {
        let a = MemoryAdmission::new(limits());
        let rx = a.changes();
        let r = id(a.reserve(&req("c1", "OTHER", "u"), at(0)));
        assert_eq!(*rx.borrow(), 1);
        a.heartbeat(&r, at(1));
        a.reserve(&req("c1", "OTHER", "u"), at(2)).unwrap();
        assert_eq!(*rx.borrow(), 1, "renewals change no count");
        a.release(&r);
        assert_eq!(*rx.borrow(), 2);
    }

    #[test]
    fn thousand_concurrent_reserves_against_an_agency_limit_of_30() {
        let a = Arc::new(MemoryAdmission::new(limits()));
        let barrier = Arc::new(std::sync::Barrier::new(1000));
        let handles: Vec<_> = (0..1000)
            .map(|i| {
                let (a, b) = (a.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    let user = format!("user-{i}");
                    a.reserve(&req("cam-metro-1", "METRO", &user), at(0)).ok()
                })
            })
            .collect();
        let ok: Vec<Reservation> = handles
            .into_iter()
            .filter_map(|h| h.join().expect("no panic"))
            .map(|r| r.reservation().clone())
            .collect();
        assert_eq!(ok.len(), 30);
        let s = a.stats();
        assert_eq!(s.active_streams, 30);
        for r in &ok {
            assert!(a.release(&r.id).is_some());
        }
        let s = a.stats();
        assert_eq!(s.active_streams, 0);
        assert!(s.per_agency.iter().all(|c| c.current == 0), "{s:?}");
        assert!(a.list().is_empty());
    }
}
