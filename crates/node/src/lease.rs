//! Leases: reservations whose WHEP session is connected and whose viewer is alive are renewed
//! automatically; reservations not renewed (by heartbeat or by a live session) expire, which ends
//! their session and returns their quota.

use crate::Services;
use admission::EndReason;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often the keeper looks; bounds how late an expiry can be noticed.
pub const TICK: Duration = Duration::from_millis(250);

/// One pass: renew reservations with a live viewer, then expire the rest that are due. `now` is
/// wall-clock time (leases are wall-clock); `mono` the monotonic time matching it, for converting
/// the WHEP sessions' last activity (monotonic) to wall-clock time.
///
/// A viewer is live while its session is connected; its lease is renewed from the last datagram
/// its peer sent (RTCP reports, STUN consent checks, arriving every second or so), so a viewer
/// that vanishes without a word loses its reservation at most one lease after its last packet.
pub fn lease_tick(st: &Services, now: SystemTime, mono: Instant) {
    let live: Vec<(base::ReservationId, SystemTime)> = st
        .admission
        .list()
        .into_iter()
        .filter_map(|r| {
            let info = st.whep.session_info(r.session.as_ref()?)?;
            if info.state != webrtc::SessionState::Connected {
                return None;
            }
            let ago = mono.saturating_duration_since(info.last_activity?);
            Some((r.id, now.checked_sub(ago)?))
        })
        .collect();
    if !live.is_empty() {
        st.admission.renew(&live, now);
    }
    for r in st.admission.expire(now) {
        st.ended(&r, EndReason::Expired);
    }
}

/// Runs [`lease_tick`] every [`TICK`] of the node's clocks.
pub fn spawn_lease_keeper(st: Arc<Services>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            st.clocks.sleep(TICK).await;
            lease_tick(&st, st.clocks.realtime(), st.clocks.monotonic());
        }
    })
}
