//! The simulated estate (site, recording servers, hardware, cameras, camera groups) and its JSON
//! rendering with the field sets of the real API Gateway items (reference §2.2–2.5).

use media::Codec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ts;

/// Group paths in creation order; parents always precede children, and a deep path comes early
/// so that small estates still have depth.
const GROUP_PATHS: &[&str] = &[
    "Dubai Police",
    "Metro",
    "Bus",
    "Other",
    "Metro/Red Line",
    "Metro/Red Line/Union",
    "Dubai Police/Sheikh Zayed Rd",
    "Bus/Deira",
    "Metro/Green Line",
    "Metro/Green Line/Al Ras",
    "Dubai Police/Al Barsha",
    "Other/Parking",
    "Metro/Red Line/BurJuman",
    "Dubai Police/Sheikh Zayed Rd/Interchange 1",
    "Bus/Al Ghubaiba",
    "Other/Municipality",
    "Metro/Green Line/Etisalat",
    "Dubai Police/Deira",
    "Bus/Deira/Gold Souk",
    "Metro/Red Line/Mall of the Emirates",
    "Dubai Police/Sheikh Zayed Rd/Interchange 2",
    "Other/Parking/Level 1",
    "Bus/Satwa",
    "Dubai Police/Jumeirah",
    "Metro/Red Line/Rashidiya",
];

const MODELS: &[&str] = &[
    "AXIS P3245-V",
    "AXIS M3007",
    "Hikvision DS-2CD2143G2-I",
    "Bosch FLEXIDOME IP 5100i",
    "Hanwha XNV-8080R",
];

const DRIVER_IDS: &[&str] = &[
    "ab537f0c-373c-4a3c-a45f-cb0c07fc07b3",
    "2f2d2a55-4c0e-4b4f-9d1b-6d6d1e8a0c11",
    "7e4b5a3a-9a21-4c6b-8f4e-0d5c2b9e6a77",
];

pub(crate) struct Site {
    pub id: String,
    pub last_modified: String,
}

pub(crate) struct Recorder {
    pub id: String,
    pub name: String,
    pub storage_id: String,
    pub last_modified: String,
}

pub(crate) struct Hardware {
    pub id: String,
    pub name: String,
    pub address: String,
    pub model: String,
    pub driver_id: String,
    pub recorder_id: String,
    pub last_modified: String,
}

#[derive(Clone)]
pub(crate) struct Camera {
    pub id: String,
    pub name: String,
    pub index: usize,
    pub channel: u32,
    pub codec: Codec,
    pub hardware_id: String,
    pub enabled: bool,
    pub last_modified: String,
    pub gis: Option<(f64, f64)>,
    pub coverage_direction: f64,
    pub coverage_depth: f64,
    pub coverage_fov: f64,
    pub framerate: u32,
    pub ptz: bool,
    pub storage_id: String,
}

pub(crate) struct Group {
    pub id: String,
    pub name: String,
    pub path: String,
    pub parent_id: Option<String>,
    pub description: String,
    pub last_modified: String,
    /// Direct members, in insertion order.
    pub camera_ids: Vec<String>,
}

pub(crate) struct Estate {
    pub site: Site,
    pub recorders: Vec<Recorder>,
    pub hardware: Vec<Hardware>,
    pub cameras: Vec<Camera>,
    pub groups: Vec<Group>,
    pub h265_every: usize,
    rng: StdRng,
    next_index: usize,
}

fn guid(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A deterministic "last modified" time between 2023-01-01 and 2025-10-31.
fn past_time(rng: &mut StdRng) -> SystemTime {
    let start = 1_672_531_200_000u64; // 2023-01-01
    let span = 88_000_000_000u64; // ~2.8 years in ms
    UNIX_EPOCH + Duration::from_millis(start + rng.random_range(0..span))
}

/// Most items carry a UTC time; about one in five an offset of -05:00 (both occur, §6.8).
fn last_modified(rng: &mut StdRng) -> String {
    let t = past_time(rng);
    if rng.random_range(0..5) == 0 {
        ts::offset7(t, -5)
    } else {
        ts::utc7(t)
    }
}

impl Estate {
    pub fn generate(cameras: usize, groups: usize, h265_every: usize, seed: u64) -> Estate {
        let mut rng = StdRng::seed_from_u64(seed);
        let site = Site {
            id: guid(&mut rng),
            last_modified: last_modified(&mut rng),
        };
        let n_rec = if cameras >= 16 { 2 } else { 1 };
        let recorders = (0..n_rec)
            .map(|i| Recorder {
                id: guid(&mut rng),
                name: format!("VMS-REC{:02}", i + 1),
                storage_id: guid(&mut rng),
                last_modified: last_modified(&mut rng),
            })
            .collect();
        let mut estate = Estate {
            site,
            recorders,
            hardware: Vec::new(),
            cameras: Vec::new(),
            groups: Vec::new(),
            h265_every,
            rng,
            next_index: 1,
        };
        for i in 0..groups {
            let path = match GROUP_PATHS.get(i) {
                Some(p) => (*p).to_owned(),
                None => format!("Other/Area {}", i + 1 - GROUP_PATHS.len()),
            };
            estate.add_group(&path);
        }
        let mut made = 0;
        while made < cameras {
            let channels = [1, 1, 1, 2, 3, 4][estate.rng.random_range(0..6usize)];
            let channels = channels.min(cameras - made);
            let hw = estate.add_hardware();
            for ch in 0..channels {
                estate.add_camera_on(&hw, ch as u32);
            }
            made += channels;
        }
        // At least one camera in two groups: camera 1 also in the last leaf of another agency.
        if let Some(first) = estate.cameras.first().map(|c| c.id.clone()) {
            let leaves = estate.leaf_indices();
            let first_group = estate
                .groups
                .iter()
                .position(|g| g.camera_ids.contains(&first));
            if let Some(fg) = first_group {
                let top = |p: &str| p.split('/').next().unwrap_or("").to_owned();
                let fg_top = top(&estate.groups[fg].path);
                let other = leaves
                    .iter()
                    .rev()
                    .copied()
                    .find(|&l| top(&estate.groups[l].path) != fg_top)
                    .or_else(|| leaves.iter().rev().copied().find(|&l| l != fg));
                if let Some(o) = other {
                    estate.groups[o].camera_ids.push(first);
                }
            }
        }
        estate
    }

    fn add_group(&mut self, path: &str) {
        let (parent_id, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (
                self.groups
                    .iter()
                    .find(|g| g.path == parent)
                    .map(|g| g.id.clone()),
                name.to_owned(),
            ),
            None => (None, path.to_owned()),
        };
        let id = guid(&mut self.rng);
        let last_modified = last_modified(&mut self.rng);
        self.groups.push(Group {
            id,
            description: format!("Cameras of {}.", path.replace('/', " / ")),
            name,
            path: path.to_owned(),
            parent_id,
            last_modified,
            camera_ids: Vec::new(),
        });
    }

    /// Indices of groups without subgroups.
    fn leaf_indices(&self) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&i| {
                let id = &self.groups[i].id;
                !self
                    .groups
                    .iter()
                    .any(|g| g.parent_id.as_deref() == Some(id.as_str()))
            })
            .collect()
    }

    fn add_hardware(&mut self) -> String {
        let n = self.hardware.len();
        let rng = &mut self.rng;
        let ip = format!(
            "10.{}.{}.{}",
            rng.random_range(1..250u8),
            rng.random_range(0..250u8),
            rng.random_range(2..250u8)
        );
        // A few addresses carry a port (http scheme on the TLS port, as seen live).
        let address = if rng.random_range(0..8) == 0 {
            format!("http://{ip}:443/")
        } else {
            format!("http://{ip}/")
        };
        let model = MODELS[rng.random_range(0..MODELS.len())].to_owned();
        let driver_id = DRIVER_IDS[rng.random_range(0..DRIVER_IDS.len())].to_owned();
        let id = guid(rng);
        let last_modified = last_modified(rng);
        let recorder_id = self.recorders[n % self.recorders.len()].id.clone();
        self.hardware.push(Hardware {
            id: id.clone(),
            name: format!("{model} ({ip})"),
            address,
            model,
            driver_id,
            recorder_id,
            last_modified,
        });
        id
    }

    fn add_camera_on(&mut self, hardware_id: &str, channel: u32) -> Camera {
        let index = self.next_index;
        self.next_index += 1;
        let codec = if self.h265_every > 0 && index.is_multiple_of(self.h265_every) {
            Codec::H265
        } else {
            Codec::H264
        };
        let (hw_name, recorder_id) = self
            .hardware
            .iter()
            .find(|h| h.id == hardware_id)
            .map(|h| (h.name.clone(), h.recorder_id.clone()))
            .unwrap_or_default();
        let storage_id = self
            .recorders
            .iter()
            .find(|r| r.id == recorder_id)
            .map(|r| r.storage_id.clone())
            .unwrap_or_default();
        let rng = &mut self.rng;
        let gis = if rng.random_range(0..3) == 0 {
            None
        } else {
            Some((
                55.1 + rng.random_range(0..30_000u32) as f64 / 100_000.0,
                25.0 + rng.random_range(0..30_000u32) as f64 / 100_000.0,
            ))
        };
        let cam = Camera {
            id: guid(rng),
            name: format!("{hw_name} - Camera {}", channel + 1),
            index,
            channel,
            codec,
            hardware_id: hardware_id.to_owned(),
            enabled: true,
            last_modified: last_modified(rng),
            gis,
            coverage_direction: [0.0, 0.25, 0.5, 0.75][rng.random_range(0..4usize)],
            coverage_depth: if rng.random_bool(0.5) {
                0.0
            } else {
                4.57200000001829
            },
            coverage_fov: if rng.random_bool(0.5) { 0.0 } else { 0.25 },
            framerate: [5, 5, 10, 25][rng.random_range(0..4usize)],
            ptz: rng.random_range(0..4) == 0,
            storage_id,
        };
        let leaves = self.leaf_indices();
        if !leaves.is_empty() {
            let g = leaves[(index - 1) % leaves.len()];
            self.groups[g].camera_ids.push(cam.id.clone());
        }
        self.cameras.push(cam.clone());
        cam
    }

    /// Adds a camera on a new single-channel hardware.
    pub fn add_camera(&mut self) -> Camera {
        let hw = self.add_hardware();
        self.add_camera_on(&hw, 0)
    }

    pub fn group_path_of(&self, id: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.camera_ids.iter().any(|c| c == id))
            .map(|g| g.path.clone())
            .collect()
    }

    pub fn find_camera(&self, id: &str) -> Option<&Camera> {
        self.cameras.iter().find(|c| c.id.eq_ignore_ascii_case(id))
    }

    pub fn move_camera(&mut self, id: &str, to: &str) -> bool {
        let Some(cid) = self.find_camera(id).map(|c| c.id.clone()) else {
            return false;
        };
        let Some(target) = self.groups.iter().position(|g| g.path == to) else {
            return false;
        };
        for g in &mut self.groups {
            g.camera_ids.retain(|c| *c != cid);
        }
        self.groups[target].camera_ids.push(cid);
        true
    }

    pub fn rename_camera(&mut self, id: &str, name: &str) -> bool {
        let now = ts::utc7(SystemTime::now());
        match self
            .cameras
            .iter_mut()
            .find(|c| c.id.eq_ignore_ascii_case(id))
        {
            Some(c) => {
                c.name = name.to_owned();
                c.last_modified = now;
                true
            }
            None => false,
        }
    }

    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> bool {
        match self
            .cameras
            .iter_mut()
            .find(|c| c.id.eq_ignore_ascii_case(id))
        {
            Some(c) => {
                c.enabled = enabled;
                true
            }
            None => false,
        }
    }

    pub fn remove_camera(&mut self, id: &str) -> Option<Camera> {
        let pos = self
            .cameras
            .iter()
            .position(|c| c.id.eq_ignore_ascii_case(id))?;
        let cam = self.cameras.remove(pos);
        for g in &mut self.groups {
            g.camera_ids.retain(|c| *c != cam.id);
        }
        Some(cam)
    }

    // ---- JSON rendering -------------------------------------------------------------------

    pub fn site_json(&self) -> Value {
        json!({
            "displayName": "VMS-MGMT",
            "id": self.site.id,
            "name": "VMS-MGMT",
            "description": "",
            "lastModified": self.site.last_modified,
            "timeZone": "Arabian Standard Time",
            "computerName": "VMS-MGMT",
            "domainName": "vantage.sim",
            "lastStatusHandshake": ts::utc7(SystemTime::now()),
            "physicalMemory": 34_359_738_368u64,
            "platform": "Microsoft Windows Server 2022 Standard",
            "processors": 8,
            "serviceAccount": "NT AUTHORITY\\NETWORK SERVICE",
            "synchronizationStatus": 0,
            "masterSiteAddress": "",
            "version": crate::PRODUCT_VERSION,
            "relations": {"self": {"type": "sites", "id": self.site.id}}
        })
    }

    pub fn recorder_json(&self, r: &Recorder, host: &str, port: u16) -> Value {
        json!({
            "displayName": r.name,
            "enabled": true,
            "id": r.id,
            "name": r.name,
            "description": format!("XProtect Recording Server {}.", r.name),
            "lastModified": r.last_modified,
            "synchronizationTime": -1,
            "timeZoneName": "Arabian Standard Time",
            "hostName": host,
            "portNumber": port,
            "webServerUri": format!("http://{host}:{port}/"),
            "activeWebServerUri": "",
            "publicAccessEnabled": false,
            "publicWebserverHostName": "",
            "publicWebserverPort": 0,
            "multicastServerAddress": "0.0.0.0",
            "shutdownOnStorageFailure": false,
            "relations": {
                "parent": {"type": "sites", "id": self.site.id},
                "self": {"type": "recordingServers", "id": r.id}
            }
        })
    }

    pub fn storage_json(&self, r: &Recorder) -> Value {
        json!({
            "displayName": "Local default",
            "id": r.storage_id,
            "name": "Local default",
            "description": "",
            "diskPath": "C:\\MediaDatabase",
            "retainMinutes": 10080,
            "maxSize": 512_000,
            "isDefault": true,
            "signing": false,
            "encryptionMethod": "None",
            "lastModified": r.last_modified,
            "archives": [],
            "relations": {
                "parent": {"type": "recordingServers", "id": r.id},
                "self": {"type": "storages", "id": r.storage_id}
            }
        })
    }

    pub fn hardware_json(&self, h: &Hardware) -> Value {
        json!({
            "displayName": h.name,
            "enabled": true,
            "id": h.id,
            "name": h.name,
            "description": format!("{} installed by the simulator.", h.model),
            "address": h.address,
            "userName": "root",
            "model": h.model,
            "passwordLastModified": ts::DOTNET_MIN,
            "lastModified": h.last_modified,
            "hardwareDriverPath": {"type": "hardwareDrivers", "id": h.driver_id},
            "relations": {
                "parent": {"type": "recordingServers", "id": h.recorder_id},
                "self": {"type": "hardware", "id": h.id}
            }
        })
    }

    /// The 25.1 shape; with `strings` the 2023 shape (coverage and frame rate as strings, no
    /// `failoverSetting`).
    pub fn camera_json(&self, c: &Camera, strings: bool) -> Value {
        let gis = match c.gis {
            Some((lon, lat)) => format!("POINT ({lon} {lat})"),
            None => "POINT EMPTY".to_owned(),
        };
        let num = |v: f64| -> Value {
            if strings {
                Value::String(v.to_string())
            } else {
                json!(v)
            }
        };
        let fr: Value = if strings {
            Value::String(c.framerate.to_string())
        } else {
            json!(c.framerate)
        };
        let mut v = json!({
            "displayName": c.name,
            "enabled": c.enabled,
            "id": c.id,
            "name": c.name,
            "channel": c.channel,
            "description": "",
            "createdDate": ts::DOTNET_MIN,
            "lastModified": c.last_modified,
            "gisPoint": gis,
            "shortName": "",
            "icon": 0,
            "coverageDirection": num(c.coverage_direction),
            "coverageDepth": num(c.coverage_depth),
            "coverageFieldOfView": num(c.coverage_fov),
            "recordingFramerate": fr,
            "recordKeyframesOnly": false,
            "recordOnRelatedDevices": true,
            "ptzEnabled": c.ptz,
            "recordingEnabled": true,
            "prebufferEnabled": true,
            "prebufferInMemory": true,
            "prebufferSeconds": 3,
            "edgeStorageEnabled": false,
            "edgeStoragePlaybackEnabled": false,
            "manualRecordingTimeoutEnabled": true,
            "manualRecordingTimeoutMinutes": 15,
            "recordingStorage": {"type": "storages", "id": c.storage_id},
            "failoverSetting": "FullSupport",
            "relations": {
                "parent": {"type": "hardware", "id": c.hardware_id},
                "self": {"type": "cameras", "id": c.id}
            }
        });
        if strings && let Some(o) = v.as_object_mut() {
            o.remove("failoverSetting");
        }
        v
    }

    pub fn group_json(&self, g: &Group) -> Value {
        json!({
            "displayName": g.name,
            "id": g.id,
            "name": g.name,
            "description": g.description,
            "lastModified": g.last_modified,
            "builtIn": false,
            "relations": {"self": {"type": "cameraGroups", "id": g.id}}
        })
    }
}
