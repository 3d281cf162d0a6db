//! The reconciler: upstream supervisors (one per camera stream) and recording kept in line with
//! the catalog. A channel id is the camera id for the main stream and `camera@quality` for a
//! sub-stream.

use crate::Services;
use base::Clocks;
use hub::{Channel, ChannelConfig, Hub};
use ingest::{BackoffPolicy, SourceConfig, SupervisorHandle};
use std::collections::HashMap;
use std::sync::Arc;
use vms::catalog::Catalog;

/// The running upstream supervisors, by channel id.
#[derive(Default)]
pub struct Upstreams {
    running: HashMap<String, (SourceConfig, SupervisorHandle)>,
}

/// The sources the catalog asks for, by channel id.
fn desired(catalog: &Catalog) -> HashMap<String, SourceConfig> {
    let mut desired = HashMap::new();
    for c in catalog.all().iter().filter(|c| c.camera.enabled) {
        let cam = &c.camera;
        let streams = std::iter::once((cam.id.clone(), &cam.rtsp_url)).chain(
            cam.substreams
                .iter()
                .map(|(q, u)| (format!("{}@{q}", cam.id), u)),
        );
        for (channel_id, url) in streams {
            let source = SourceConfig {
                camera_id: channel_id.as_str().into(),
                url: url.clone(),
                username: cam.username.clone(),
                password: cam.password.clone(),
                transport: match cam.transport {
                    settings::Transport::Tcp => ingest::Transport::Tcp,
                    settings::Transport::Udp => ingest::Transport::Udp,
                },
            };
            desired.insert(channel_id, source);
        }
    }
    desired
}

impl Upstreams {
    /// Starts supervisors for new streams, restarts those whose source changed, stops those
    /// whose camera left the catalog (or was disabled).
    pub async fn apply(
        &mut self,
        hub: &Hub,
        catalog: &Catalog,
        chan_cfg: &ChannelConfig,
        clocks: &Arc<dyn Clocks>,
    ) {
        let desired = desired(catalog);
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(id, (src, _))| desired.get(*id) != Some(src))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some((_, sup)) = self.running.remove(&id) {
                sup.shutdown().await;
            }
            if !desired.contains_key(&id) {
                hub.remove(&id);
                tracing::info!(camera = %id, "camera left the catalog: upstream stopped");
            }
        }
        for (id, source) in desired {
            if self.running.contains_key(&id) {
                continue;
            }
            let ch = match hub.get(&id) {
                Some(ch) => ch,
                None => hub.add(Channel::with_clocks(
                    id.clone(),
                    chan_cfg.clone(),
                    clocks.clone(),
                )),
            };
            let sup = ingest::spawn_supervisor(
                ch,
                source.clone(),
                BackoffPolicy::default(),
                clocks.clone(),
            );
            self.running.insert(id, (source, sup));
        }
    }

    /// Stops every supervisor (closing the upstreams).
    pub async fn stop_all(&mut self) {
        for (_, (_, sup)) in self.running.drain() {
            sup.shutdown().await;
        }
    }
}

/// Follows the catalog: after every change (and once at start, since a stored VMS catalog may
/// have been loaded already) the upstreams are reconciled, then recording (its channels exist
/// by then).
pub fn spawn_reconciler(
    st: Arc<Services>,
    upstreams: Arc<tokio::sync::Mutex<Upstreams>>,
    chan_cfg: ChannelConfig,
) -> tokio::task::JoinHandle<()> {
    let mut changes = st.catalog.changes();
    changes.mark_changed();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            upstreams
                .lock()
                .await
                .apply(&st.hub, &st.catalog, &chan_cfg, &st.clocks)
                .await;
            crate::recording::apply(&st);
        }
    })
}
