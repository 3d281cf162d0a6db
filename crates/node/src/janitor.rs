//! Follows the WHEP sessions the media loop ended on its own (peer gone, ICE/DTLS failure,
//! DTLS close): detaches them from their reservations and ends per-session reservations.

use crate::Services;
use std::sync::Arc;

pub fn spawn_session_janitor(st: Arc<Services>) -> tokio::task::JoinHandle<()> {
    let mut events = st.whep.subscribe_events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(webrtc::SessionEvent::Ended { id, reason }) => {
                    tracing::info!(session = %id, %reason, "whep session ended");
                    st.session_ended(&id);
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "session events lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}
