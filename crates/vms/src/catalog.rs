//! The camera catalog: cameras from the configuration file plus cameras discovered in the VMS,
//! swapped atomically when a sync completes. Everything that asks "which cameras exist" reads it.

use base::CameraId;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Where a camera comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// `cameras:` in the configuration file.
    Config,
    /// Discovered in XProtect.
    XProtect(VmsInfo),
}

/// What XProtect says about a camera beyond the catalog fields.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct VmsInfo {
    /// The camera's GUID in XProtect.
    pub guid: String,
    pub recorder_id: Option<String>,
    pub recorder_name: Option<String>,
    /// The recording server's `webServerUri` (RecorderCommandService), possibly overridden by
    /// `milestone.recording_server`.
    pub recorder_url: Option<String>,
    /// Paths of the camera groups it belongs to (`Metro/Red Line`).
    pub groups: Vec<String>,
    /// True when no agency rule matched and the default agency was used.
    pub unmapped: bool,
}

/// One camera of the catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogCamera {
    pub camera: settings::Camera,
    pub origin: Origin,
}

impl CatalogCamera {
    pub fn vms(&self) -> Option<&VmsInfo> {
        match &self.origin {
            Origin::XProtect(v) => Some(v),
            Origin::Config => None,
        }
    }
}

/// What changed in a catalog swap, by camera id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogDiff {
    pub added: Vec<CameraId>,
    pub removed: Vec<CameraId>,
    pub renamed: Vec<CameraId>,
    /// Moved to another agency (e.g. into another camera group).
    pub moved: Vec<CameraId>,
    /// Another stream URL or credentials: its upstream must restart.
    pub source_changed: Vec<CameraId>,
}

impl CatalogDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.renamed.is_empty()
            && self.moved.is_empty()
            && self.source_changed.is_empty()
    }
}

pub struct Catalog {
    config: Vec<CatalogCamera>,
    cameras: RwLock<Arc<Vec<CatalogCamera>>>,
    version: watch::Sender<u64>,
}

impl Catalog {
    /// A catalog holding the configuration's cameras.
    pub fn new(config_cameras: &[settings::Camera]) -> Self {
        let config: Vec<CatalogCamera> = config_cameras
            .iter()
            .map(|c| CatalogCamera {
                camera: c.clone(),
                origin: Origin::Config,
            })
            .collect();
        Catalog {
            cameras: RwLock::new(Arc::new(config.clone())),
            config,
            version: watch::Sender::new(0),
        }
    }

    pub fn get(&self, id: &str) -> Option<CatalogCamera> {
        self.cameras
            .read()
            .iter()
            .find(|c| c.camera.id == id)
            .cloned()
    }

    /// Every camera: the configuration's first, then the VMS's by name.
    pub fn all(&self) -> Arc<Vec<CatalogCamera>> {
        self.cameras.read().clone()
    }

    /// Replaces the VMS cameras. A configured camera with the same id wins over a VMS one.
    pub fn set_vms(&self, mut vms: Vec<CatalogCamera>) -> CatalogDiff {
        vms.retain(|v| !self.config.iter().any(|c| c.camera.id == v.camera.id));
        vms.sort_by(|a, b| {
            a.camera
                .name
                .cmp(&b.camera.name)
                .then(a.camera.id.cmp(&b.camera.id))
        });
        let mut next = self.config.clone();
        next.extend(vms);
        let mut guard = self.cameras.write();
        let before: BTreeMap<&str, &CatalogCamera> =
            guard.iter().map(|c| (c.camera.id.as_str(), c)).collect();
        let after: BTreeMap<&str, &CatalogCamera> =
            next.iter().map(|c| (c.camera.id.as_str(), c)).collect();
        let mut d = CatalogDiff::default();
        for (id, new) in &after {
            match before.get(id) {
                None => d.added.push(CameraId::from(*id)),
                Some(old) => {
                    let (o, n) = (&old.camera, &new.camera);
                    if o.name != n.name {
                        d.renamed.push(CameraId::from(*id));
                    }
                    if o.agency != n.agency {
                        d.moved.push(CameraId::from(*id));
                    }
                    if o.rtsp_url != n.rtsp_url
                        || o.username != n.username
                        || o.password != n.password
                        || o.transport != n.transport
                        || o.enabled != n.enabled
                        || o.substreams != n.substreams
                    {
                        d.source_changed.push(CameraId::from(*id));
                    }
                }
            }
        }
        d.removed = before
            .keys()
            .filter(|id| !after.contains_key(*id))
            .map(|id| CameraId::from(*id))
            .collect();
        let changed = !d.is_empty() || *guard != Arc::new(next.clone());
        *guard = Arc::new(next);
        drop(guard);
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
        d
    }

    /// Increases whenever the catalog changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}
