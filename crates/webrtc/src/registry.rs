//! What API callers see of the sessions: their shared counters by id (live and recently ended)
//! and the life-cycle event stream. Written by the media loop's shell, read by [`crate::WhepServer`].

use crate::session::{EndReason, SessionEvent, SessionId, SessionState, Shared};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Ended sessions stay visible in [`crate::WhepServer::session_info`] until this many more have
/// ended.
const KEEP_ENDED: usize = 256;

#[derive(Default)]
struct Sessions {
    by_id: HashMap<SessionId, Arc<Shared>>,
    ended: VecDeque<SessionId>,
    live: usize,
}

pub(crate) struct Registry {
    sessions: Mutex<Sessions>,
    events: broadcast::Sender<SessionEvent>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        Registry {
            sessions: Mutex::new(Sessions::default()),
            events,
        }
    }

    pub(crate) fn insert(&self, id: SessionId, shared: Arc<Shared>) {
        let mut r = self.sessions.lock();
        r.by_id.insert(id, shared);
        r.live += 1;
    }

    pub(crate) fn get(&self, id: &SessionId) -> Option<Arc<Shared>> {
        self.sessions.lock().by_id.get(id).cloned()
    }

    pub(crate) fn all(&self) -> Vec<(SessionId, Arc<Shared>)> {
        self.sessions
            .lock()
            .by_id
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn live(&self) -> usize {
        self.sessions.lock().live
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    pub(crate) fn connected(&self, id: &SessionId) {
        let _ = self.events.send(SessionEvent::Connected(id.clone()));
    }

    pub(crate) fn mark_ended(&self, id: &SessionId, shared: &Shared, reason: EndReason) {
        *shared.end_reason.lock() = Some(reason.clone());
        shared.set_state(SessionState::Ended);
        {
            let mut r = self.sessions.lock();
            r.live = r.live.saturating_sub(1);
            r.ended.push_back(id.clone());
            while r.ended.len() > KEEP_ENDED {
                if let Some(old) = r.ended.pop_front() {
                    r.by_id.remove(&old);
                }
            }
        }
        let _ = self.events.send(SessionEvent::Ended {
            id: id.clone(),
            reason,
        });
    }
}
