//! XProtect catalog sync: at start and every `sync_interval`, read the VMS's cameras, groups and
//! recording servers, map cameras to agencies by the configured rules, build their live URLs, and
//! swap them into the catalog. The result is saved in the management store, so a node that starts
//! while XProtect is down serves the last known catalog, marked stale with its age.

use crate::catalog::{Catalog, CatalogCamera, CatalogDiff, Origin, VmsInfo};
use crate::{Group, Inventory, Recorder, Sequence};
use base::{Clocks, Error};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use settings::{LiveMethod, Milestone, RuleMatch};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const SNAPSHOT_KEY: &str = "xprotect_catalog";

/// The catalog fields kept in the snapshot (never credentials: those come from the config).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct StoredCamera {
    id: String,
    name: String,
    agency: String,
    rtsp_url: String,
    enabled: bool,
    model: Option<String>,
    ptz: bool,
    recorder_id: Option<String>,
    recorder_name: Option<String>,
    recorder_url: Option<String>,
    groups: Vec<String>,
    unmapped: bool,
}

/// What `GET /api/v1/vms/status` shows.
#[derive(Clone, Debug, Default)]
struct SyncState {
    last_attempt: Option<SystemTime>,
    last_success: Option<SystemTime>,
    last_duration: Option<Duration>,
    syncs: u64,
    failures: u64,
    cameras: usize,
    groups: usize,
    recorders: usize,
    last_diff: CatalogDiff,
    unmapped: Vec<(String, String)>,
    /// Cameras left out because no live URL can be built for them (no `rtsp_base_url`).
    without_live_url: usize,
    error: Option<String>,
    /// The catalog in use was loaded from the store, not from a successful sync.
    stale_since: Option<SystemTime>,
    requests_last_sync: u32,
}

/// The sync's state at one moment (what `GET /api/v1/vms/status` shows).
#[derive(Clone, Debug)]
pub struct SyncStatus {
    /// The management server, without credentials.
    pub server_url: String,
    pub logged_in: bool,
    pub last_attempt: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
    pub last_duration: Option<Duration>,
    pub syncs: u64,
    pub failures: u64,
    /// Set while the catalog in use is not from a successful sync: how old it is.
    pub stale_age: Option<Duration>,
    pub cameras: usize,
    pub groups: usize,
    pub recording_servers: usize,
    pub requests_last_sync: u32,
    pub requests_total: u64,
    pub last_changes: CatalogDiff,
    pub cameras_without_live_url: usize,
    /// Cameras no agency rule matched: (id, name).
    pub unmapped_cameras: Vec<(String, String)>,
    pub error: Option<String>,
    pub connector_error: Option<String>,
}

pub struct VmsSync {
    cfg: Milestone,
    connector: crate::Connector,
    catalog: Arc<Catalog>,
    snapshots: Arc<store::Snapshots>,
    clocks: Arc<dyn Clocks>,
    state: Mutex<SyncState>,
    /// Cameras by id as last synced: GUID, recorder, for timeline queries.
    inventory: Mutex<Option<Arc<Inventory>>>,
}

/// `*` wildcards, case-insensitive.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_lowercase(), text.to_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The agency of a camera: the first rule that matches, else the default (`unmapped`).
pub fn map_agency(m: &Milestone, name: &str, groups: &[&Group]) -> (String, bool) {
    for r in &m.agency_rules {
        let hit = match &r.matcher {
            RuleMatch::Group(g) => groups.iter().any(|grp| {
                grp.name.eq_ignore_ascii_case(g)
                    || grp.path.eq_ignore_ascii_case(g)
                    || grp
                        .path
                        .to_lowercase()
                        .starts_with(&format!("{}/", g.to_lowercase()))
            }),
            RuleMatch::CameraName(p) => glob_match(p, name),
        };
        if hit {
            return (r.agency.clone(), false);
        }
    }
    (m.default_agency.clone(), true)
}

/// The live RTSP URL of an XProtect camera for the configured method.
pub fn live_url(m: &Milestone, guid: &str, name: &str) -> Option<url::Url> {
    let base = m.rtsp_base_url.as_ref()?;
    let path = match m.method {
        LiveMethod::OnvifBridge => format!("/live/{guid}"),
        LiveMethod::RtspDirect | LiveMethod::MipSdk | LiveMethod::MobileServer => {
            let enc: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
            m.rtsp_path_template
                .replace("{camera_id}", guid)
                .replace("{camera_guid}", guid)
                .replace("{camera_name}", &enc)
        }
    };
    let mut u = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    u.set_path(&joined);
    Some(u)
}

impl VmsSync {
    pub fn new(
        cfg: Milestone,
        catalog: Arc<Catalog>,
        snapshots: Arc<store::Snapshots>,
        clocks: Arc<dyn Clocks>,
    ) -> Arc<Self> {
        let mut xc =
            crate::XProtectConfig::new(cfg.server_url.clone(), &cfg.username, &cfg.password);
        xc.client_id = cfg.client_id.clone();
        xc.request_timeout = cfg.request_timeout;
        xc.max_camera_lists_per_minute = cfg.max_camera_lists_per_minute;
        xc.max_recording_queries_per_minute = cfg.max_recording_queries_per_minute;
        if matches!(cfg.method, LiveMethod::MipSdk | LiveMethod::MobileServer) {
            tracing::warn!(
                "milestone.method {:?} is not implemented yet: live video uses rtsp_base_url + rtsp_path_template",
                cfg.method
            );
        }
        Arc::new(VmsSync {
            connector: crate::Connector::new(xc, clocks.clone()),
            cfg,
            catalog,
            snapshots,
            clocks,
            state: Mutex::new(SyncState::default()),
            inventory: Mutex::new(None),
        })
    }

    fn to_catalog(&self, stored: &[StoredCamera]) -> Vec<CatalogCamera> {
        stored
            .iter()
            .filter_map(|s| {
                let rtsp_url = url::Url::parse(&s.rtsp_url).ok()?;
                Some(CatalogCamera {
                    camera: settings::Camera {
                        id: s.id.clone(),
                        name: s.name.clone(),
                        agency: s.agency.clone(),
                        location: None,
                        rtsp_url,
                        username: Some(self.cfg.username.clone()),
                        password: Some(self.cfg.password.clone()),
                        transport: settings::Transport::Tcp,
                        enabled: s.enabled,
                        recording: self.cfg.recording,
                        retention_days: self.cfg.retention_days,
                        manufacturer: Some("Milestone XProtect".into()),
                        model: s.model.clone(),
                        ptz_capable: s.ptz,
                        substreams: Vec::new(),
                    },
                    origin: Origin::XProtect(VmsInfo {
                        guid: s.id.clone(),
                        recorder_id: s.recorder_id.clone(),
                        recorder_name: s.recorder_name.clone(),
                        recorder_url: s.recorder_url.clone(),
                        groups: s.groups.clone(),
                        unmapped: s.unmapped,
                    }),
                })
            })
            .collect()
    }

    /// Loads the last saved catalog (at start, before the first sync), marked stale.
    pub fn load_snapshot(&self) {
        match self.snapshots.get(SNAPSHOT_KEY) {
            Ok(Some((at, body))) => match serde_json::from_str::<Vec<StoredCamera>>(&body) {
                Ok(stored) => {
                    let n = stored.len();
                    self.catalog.set_vms(self.to_catalog(&stored));
                    let mut st = self.state.lock();
                    st.stale_since = Some(at);
                    st.cameras = n;
                    tracing::info!(
                        cameras = n,
                        "XProtect catalog loaded from the store (stale until the next sync)"
                    );
                }
                Err(e) => tracing::warn!("stored XProtect catalog unreadable, ignored: {e}"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// Maps an inventory to catalog cameras; also returns the unmapped ones (id, name) and how
    /// many had to be left out for want of a live URL.
    fn map(&self, inv: &Inventory) -> (Vec<StoredCamera>, Vec<(String, String)>, usize) {
        let mut out = Vec::new();
        let mut unmapped = Vec::new();
        let mut without_live_url = 0;
        for c in &inv.cameras {
            let groups: Vec<&Group> = inv
                .groups
                .iter()
                .filter(|g| g.camera_ids.iter().any(|id| id.eq_ignore_ascii_case(&c.id)))
                .collect();
            let (agency, is_unmapped) = map_agency(&self.cfg, &c.name, &groups);
            if is_unmapped {
                unmapped.push((c.id.clone(), c.name.clone()));
            }
            let Some(rtsp_url) = live_url(&self.cfg, &c.id, &c.name) else {
                without_live_url += 1;
                continue;
            };
            let hw = c
                .hardware_id
                .as_ref()
                .and_then(|h| inv.hardware.iter().find(|x| &x.id == h));
            let rec = c
                .recorder_id
                .as_ref()
                .and_then(|r| inv.recorders.iter().find(|x| &x.id == r));
            let recorder_url = match &self.cfg.recording_server {
                Some(hp) => Some(format!("http://{hp}/")),
                None => rec.and_then(|r| r.web_server_uri.as_ref().map(|u| u.to_string())),
            };
            let mut group_paths: Vec<String> = groups.iter().map(|g| g.path.clone()).collect();
            group_paths.sort();
            out.push(StoredCamera {
                id: c.id.to_lowercase(),
                name: c.name.clone(),
                agency,
                rtsp_url: rtsp_url.to_string(),
                enabled: c.enabled,
                model: hw.and_then(|h| h.model.clone()),
                ptz: c.ptz_enabled,
                recorder_id: c.recorder_id.clone(),
                recorder_name: rec.map(|r| r.name.clone()),
                recorder_url,
                groups: group_paths,
                unmapped: is_unmapped,
            });
        }
        if without_live_url > 0 {
            tracing::warn!(
                cameras = without_live_url,
                "XProtect cameras left out of the catalog: no live URL (set milestone.rtsp_base_url)"
            );
        }
        (out, unmapped, without_live_url)
    }

    /// One sync. On failure the catalog in use is kept.
    pub async fn sync_once(&self) -> Result<CatalogDiff, Error> {
        let started = self.clocks.realtime();
        let t0 = std::time::Instant::now();
        self.state.lock().last_attempt = Some(started);
        match self.connector.inventory().await {
            Ok(inv) => {
                let (stored, unmapped, without_live_url) = self.map(&inv);
                let body = serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into());
                if let Err(e) = self.snapshots.put(SNAPSHOT_KEY, &body, started) {
                    tracing::warn!("saving the XProtect catalog: {e}");
                }
                let diff = self.catalog.set_vms(self.to_catalog(&stored));
                let mut st = self.state.lock();
                st.last_success = Some(started);
                st.last_duration = Some(t0.elapsed());
                st.syncs += 1;
                st.cameras = stored.len();
                st.groups = inv.groups.len();
                st.recorders = inv.recorders.len();
                st.requests_last_sync = inv.requests;
                st.unmapped = unmapped;
                st.without_live_url = without_live_url;
                st.error = None;
                st.stale_since = None;
                st.last_diff = diff.clone();
                drop(st);
                *self.inventory.lock() = Some(Arc::new(inv));
                tracing::info!(
                    added = diff.added.len(),
                    removed = diff.removed.len(),
                    renamed = diff.renamed.len(),
                    moved = diff.moved.len(),
                    "XProtect sync done"
                );
                Ok(diff)
            }
            Err(e) => {
                let mut st = self.state.lock();
                st.failures += 1;
                st.last_duration = Some(t0.elapsed());
                st.error = Some(e.to_string());
                if st.last_success.is_none() && st.stale_since.is_none() {
                    // Nothing known yet: the VMS cameras are simply absent.
                } else if st.stale_since.is_none() {
                    st.stale_since = st.last_success;
                }
                tracing::warn!("XProtect sync failed, keeping the previous catalog: {e}");
                Err(e)
            }
        }
    }

    /// Syncs at start and every `sync_interval`; after a failure, retries sooner (backing off
    /// from 5 s up to the interval) so a VMS that comes back is noticed.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut retry = Duration::from_secs(5);
            loop {
                let wait = match me.sync_once().await {
                    Ok(_) => {
                        retry = Duration::from_secs(5);
                        me.cfg.sync_interval
                    }
                    Err(_) => {
                        let w = retry.min(me.cfg.sync_interval);
                        retry = (retry * 2).min(me.cfg.sync_interval);
                        w
                    }
                };
                me.clocks.sleep(wait).await;
            }
        })
    }

    /// The sync's state, as `GET /api/v1/vms/status` shows it.
    pub fn status(&self) -> SyncStatus {
        let st = self.state.lock().clone();
        let c = self.connector.status();
        let now = self.clocks.realtime();
        SyncStatus {
            server_url: base::redact_url(self.cfg.server_url.as_str()),
            logged_in: c.logged_in,
            last_attempt: st.last_attempt,
            last_success: st.last_success,
            last_duration: st.last_duration,
            syncs: st.syncs,
            failures: st.failures,
            stale_age: st
                .stale_since
                .map(|s| now.duration_since(s).unwrap_or_default()),
            cameras: st.cameras,
            groups: st.groups,
            recording_servers: st.recorders,
            requests_last_sync: st.requests_last_sync,
            requests_total: c.requests,
            last_changes: st.last_diff,
            cameras_without_live_url: st.without_live_url,
            unmapped_cameras: st.unmapped,
            error: st.error,
            connector_error: c.last_error,
        }
    }

    /// Recorded sequences of an XProtect camera from its recording server.
    pub async fn sequences(
        &self,
        cam: &CatalogCamera,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<Sequence>, Error> {
        let Some(info) = cam.vms() else {
            base::bail!(
                NotFound,
                "camera `{}` is not an XProtect camera",
                cam.camera.id
            );
        };
        let recorder = Recorder {
            id: info.recorder_id.clone().unwrap_or_default(),
            name: info.recorder_name.clone().unwrap_or_default(),
            host_name: None,
            port: None,
            web_server_uri: info
                .recorder_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok()),
        };
        if recorder.web_server_uri.is_none() {
            base::bail!(
                Unavailable,
                "camera `{}`: its recording server is unknown (set milestone.recording_server)",
                cam.camera.id
            );
        }
        self.connector
            .sequences(&info.guid, &recorder, from, to, 1000)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("METRO-*", "metro-red-01"));
        assert!(glob_match("*gate*", "Airport Gate 3"));
        assert!(!glob_match("BUS-*", "METRO-1"));
        assert!(glob_match("exact", "EXACT"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }
}
