//! A Milestone XProtect simulator for tests and the demo, following
//! `shared/reference/milestone-xprotect.md` (§0–2, §4.1–4.2, §6–7).
//!
//! [`Simulator::start`] binds three listeners on ephemeral ports:
//!
//! - **management server / API Gateway** ([`Simulator::server_url`]), paths case-insensitive:
//!   - `GET /api/.well-known/uris` (no auth): `ProductVersion`, `UnsecureManagementServer`,
//!     `SecureManagementServer`, `IdentityProvider`, `ApiGateways[]`;
//!   - `GET /IDP/.well-known/openid-configuration` (no auth), `server_version` `"25.1"`;
//!   - `POST /IDP/connect/token` and `/API/IDP/connect/token` (form): `password` grant
//!     (`client_id` `GrantValidatorClient`, `VmsClient` (adds a `refresh_token`) or
//!     `VmsAdminClient`), `refresh_token` grant, `client_credentials`
//!     (`client_secret` = the password); `windows_credentials` is refused on `/API/IDP`
//!     (`unsupported_grant_type`) and answers 401 `WWW-Authenticate: Negotiate` on `/IDP`;
//!   - `GET /api/rest/v1/{sites,cameras,hardware,recordingServers,cameraGroups}` (Bearer),
//!     `/{type}/{id}`, `/hardware/{id}/cameras`, `/cameraGroups/{id}/cameras`,
//!     `/cameraGroups/{id}/cameraGroups`, `/recordingServers/{id}/storages`,
//!     `/recordingServers/{id}/hardware`; `GET /storages` answers 400 as on a live estate;
//!   - `POST /ManagementServer/ServerCommandServiceOAuth.svc` (Bearer) SOAP `Login`.
//! - **recording server** ([`Simulator::recorder_url`]): `POST
//!   /RecorderCommandService/RecorderCommandService.asmx` SOAP `SequencesGetTypes`,
//!   `SequencesGet`, dispatched on the body element (SOAPAction is ignored).
//! - **RTSP** ([`Simulator::rtsp_base_url`]): every camera at `/camera/{index}` (1-based) and
//!   `/live/{guid}` (Open Network Bridge form). H.264 cameras cycle through the four H.264
//!   fixture clips; those on the first (cameras 1, 5, 9, …) also send AAC audio.
//!
//! Behaviours the reference marks [?] are switchable in [`Faults`] (`numbers_as_strings`,
//! `honour_paging`). Where the reference is silent the choice is marked [I] in the code.

mod http;
mod model;
mod seq;
mod ts;
mod xml;

pub use media::Codec;
pub use seq::{MOTION, RECORDING, RECORDING_WITH_TRIGGER};

use base::{Error, ErrorKind, ResultExt};
use model::Estate;
use parking_lot::Mutex;
use rtsp_server::{AudioClip, ClipSource, RtspServer};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The version reported by `/api/.well-known/uris` and `/sites`.
pub const PRODUCT_VERSION: &str = "25.1.1804.0";

/// The estate and the credentials of a simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub cameras: usize,
    /// Number of camera groups, created as a tree (agencies, then areas, then sub-areas): the
    /// first four are the top-level agencies, from the seventh on the tree is 3 deep.
    pub groups: usize,
    /// Every Nth camera (by 1-based index) is H.265; 0 = none.
    pub h265_every: usize,
    pub username: String,
    pub password: String,
    /// Lifetime of OAuth access tokens (`expires_in`).
    pub token_ttl: Duration,
    /// Lifetime of ServerCommandService (SCS) tokens (`TimeToLive`).
    pub scs_ttl: Duration,
    pub seed: u64,
    pub bind: IpAddr,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            cameras: 8,
            groups: 4,
            h265_every: 0,
            username: "rta-integration".to_owned(),
            password: "sim-password".to_owned(),
            token_ttl: Duration::from_secs(3600),
            scs_ttl: Duration::from_secs(3600),
            seed: 1,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// Failure and variant switches; change them at any time with [`Simulator::set_faults`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Tokens are issued already expired, and every existing token counts as expired.
    pub expire_tokens_immediately: bool,
    /// Every `/api/rest/v1` call answers 401.
    pub unauthorized: bool,
    /// Every `/api/rest/v1` call answers 500.
    pub server_error: bool,
    /// Delay before every answer on the management and recording-server listeners.
    pub slow: Option<Duration>,
    /// Never answer on the management and recording-server listeners (until shutdown).
    pub hang: bool,
    /// 2023 shape of cameras: coverage and frame rate as strings, no `failoverSetting`.
    pub numbers_as_strings: bool,
    /// Honour `page` (0-based) and `size` on config lists; by default they are ignored, as the
    /// real configuration API does.
    pub honour_paging: bool,
    /// `/api/rest/v1` answers 200 with truncated JSON.
    pub malformed_json: bool,
    /// SOAP answers (management `Login` and the recording server) are truncated XML.
    pub malformed_xml: bool,
    /// `GET /cameraGroups` lists every group, nested ones included (the other reading of §2.5
    /// [?]); by default it lists the top-level groups only.
    pub groups_flat: bool,
}

/// A camera as the test sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimCamera {
    /// GUID, lower case.
    pub id: String,
    pub name: String,
    /// 1-based; the RTSP path is `/camera/{index}`.
    pub index: usize,
    pub codec: Codec,
    /// Slash-separated paths of the groups the camera is directly in, e.g. `Metro/Red Line/Union`.
    pub group_paths: Vec<String>,
    pub enabled: bool,
    pub hardware_id: String,
}

pub(crate) struct Shared {
    pub cfg: SimConfig,
    pub estate: Mutex<Estate>,
    pub faults: Mutex<Faults>,
    /// OAuth access token → expiry.
    pub tokens: Mutex<HashMap<String, Instant>>,
    pub refresh_tokens: Mutex<HashMap<String, ()>>,
    /// SCS token → expiry.
    pub scs_tokens: Mutex<HashMap<String, Instant>>,
    pub counts: Mutex<BTreeMap<String, u64>>,
    pub server_url: String,
    pub recorder_host: String,
    pub recorder_port: u16,
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub fn count(&self, kind: &str) {
        *self.counts.lock().entry(kind.to_owned()).or_insert(0) += 1;
    }
}

struct Clips {
    h264: Vec<Arc<ClipSource>>,
    h265: Arc<ClipSource>,
}

impl Clips {
    fn load() -> Result<Clips, Error> {
        let h264 = [
            &include_bytes!("../../../fixtures/clips/h264_a.h264")[..],
            &include_bytes!("../../../fixtures/clips/h264_b.h264")[..],
            &include_bytes!("../../../fixtures/clips/h264_c.h264")[..],
            &include_bytes!("../../../fixtures/clips/h264_d.h264")[..],
        ]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let clip = ClipSource::from_annexb(Codec::H264, b, 25)?;
            // Like a real site, some cameras have a microphone: every camera playing the first
            // clip also sends AAC audio.
            Ok(Arc::new(if i == 0 {
                clip.with_audio(AudioClip::from_adts(include_bytes!(
                    "../../../fixtures/clips/aac_16k_mono.adts"
                ))?)
            } else {
                clip
            }))
        })
        .collect::<Result<Vec<_>, Error>>()?;
        let h265 = Arc::new(ClipSource::from_annexb(
            Codec::H265,
            include_bytes!("../../../fixtures/clips/h265_a.h265"),
            25,
        )?);
        Ok(Clips { h264, h265 })
    }

    fn for_camera(&self, index: usize, codec: Codec) -> Arc<ClipSource> {
        match codec {
            Codec::H265 => Arc::clone(&self.h265),
            Codec::H264 => Arc::clone(&self.h264[(index.saturating_sub(1)) % self.h264.len()]),
        }
    }
}

/// A running simulator. See the crate documentation.
pub struct Simulator {
    shared: Arc<Shared>,
    rtsp: RtspServer,
    clips: Clips,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(ip: IpAddr, what: &str) -> Result<TcpListener, Error> {
    let sa = SocketAddr::new(ip, 0);
    TcpListener::bind(sa).await.err_kind(
        ErrorKind::Unavailable,
        format_args!("binding sim {what} to {sa}"),
    )
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

impl Simulator {
    pub async fn start(cfg: SimConfig) -> Result<Simulator, Error> {
        let clips = Clips::load()?;
        let mgmt = bind(cfg.bind, "management server").await?;
        let rec = bind(cfg.bind, "recording server").await?;
        let mgmt_addr = mgmt
            .local_addr()
            .err_kind(ErrorKind::Internal, "sim management address")?;
        let rec_addr = rec
            .local_addr()
            .err_kind(ErrorKind::Internal, "sim recorder address")?;
        let rtsp = RtspServer::bind(&SocketAddr::new(cfg.bind, 0).to_string()).await?;
        let estate = Estate::generate(cfg.cameras, cfg.groups, cfg.h265_every, cfg.seed);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let host = host_of(cfg.bind);
        let shared = Arc::new(Shared {
            server_url: format!("http://{host}:{}", mgmt_addr.port()),
            recorder_host: host,
            recorder_port: rec_addr.port(),
            cfg,
            estate: Mutex::new(estate),
            faults: Mutex::new(Faults::default()),
            tokens: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
            scs_tokens: Mutex::new(HashMap::new()),
            counts: Mutex::new(BTreeMap::new()),
            shutdown: shutdown_rx.clone(),
        });
        let mut tasks = Vec::new();
        for (listener, router) in [
            (mgmt, http::management_router(Arc::clone(&shared))),
            (rec, http::recorder_router(Arc::clone(&shared))),
        ] {
            let mut rx = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                let r = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|v| *v).await;
                    })
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "sim http listener ended");
                }
            }));
        }
        let sim = Simulator {
            shared,
            rtsp,
            clips,
            shutdown_tx,
            tasks,
        };
        let cams: Vec<(usize, String, Codec, bool)> = sim
            .shared
            .estate
            .lock()
            .cameras
            .iter()
            .map(|c| (c.index, c.id.clone(), c.codec, c.enabled))
            .collect();
        for (index, id, codec, _) in cams {
            sim.mount(index, &id, codec);
        }
        tracing::debug!(server = %sim.server_url(), recorder = %sim.recorder_url(),
            rtsp = %sim.rtsp_base_url(), "xprotect simulator started");
        Ok(sim)
    }

    fn mount(&self, index: usize, id: &str, codec: Codec) {
        let clip = self.clips.for_camera(index, codec);
        self.rtsp
            .add_clip_mount(&format!("/camera/{index}"), Arc::clone(&clip));
        self.rtsp.add_clip_mount(&format!("/live/{id}"), clip);
    }

    /// `http://127.0.0.1:P` (what the config calls `milestone.server_url`).
    pub fn server_url(&self) -> String {
        self.shared.server_url.clone()
    }

    /// `http://127.0.0.1:Q/`, the recording server's `webServerUri`.
    pub fn recorder_url(&self) -> String {
        format!(
            "http://{}:{}/",
            self.shared.recorder_host, self.shared.recorder_port
        )
    }

    /// `rtsp://127.0.0.1:R`
    pub fn rtsp_base_url(&self) -> String {
        format!("rtsp://{}", self.rtsp.local_addr())
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// A complete, working `milestone:` block for a node's configuration: the URLs, the
    /// recording server, the credentials and `method: onvif_bridge`, since live video is served
    /// at the Open Network Bridge's `/live/{camera_guid}` (the default `rtsp_direct` template
    /// `/camera/{camera_id}` would name the GUID where the simulator expects an index, and every
    /// camera would answer 404). Cameras no agency rule matches go to `OTHER`, which the
    /// configuration's `agencies:` must define. Values are quoted as YAML (JSON) strings.
    pub fn milestone_yaml(&self) -> String {
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let cfg = &self.shared.cfg;
        format!(
            "milestone:\n  server_url: {}\n  rtsp_base_url: {}\n  recording_server: {}\n  \
             username: {}\n  password: {}\n  domain: \"\"\n  \
             method: onvif_bridge   # the simulator serves /live/{{camera_guid}}\n  \
             default_agency: OTHER  # define OTHER in agencies:\n",
            q(&self.server_url()),
            q(&self.rtsp_base_url()),
            q(&format!(
                "{}:{}",
                self.shared.recorder_host, self.shared.recorder_port
            )),
            q(&cfg.username),
            q(&cfg.password),
        )
    }

    pub fn set_faults(&self, f: Faults) {
        *self.shared.faults.lock() = f;
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults.lock().clone()
    }

    /// Requires the sim's username/password (HTTP Basic) on RTSP; off by default.
    pub fn set_rtsp_auth(&self, on: bool) {
        let creds = on.then(|| {
            (
                self.shared.cfg.username.clone(),
                self.shared.cfg.password.clone(),
            )
        });
        self.rtsp.set_credentials(creds);
    }

    /// All cameras, enabled or not, in index order.
    pub fn cameras(&self) -> Vec<SimCamera> {
        let e = self.shared.estate.lock();
        e.cameras.iter().map(|c| sim_camera(&e, c)).collect()
    }

    /// Every group path, parents before children.
    pub fn group_paths(&self) -> Vec<String> {
        self.shared
            .estate
            .lock()
            .groups
            .iter()
            .map(|g| g.path.clone())
            .collect()
    }

    /// Makes the camera a member of exactly the group at `to_group_path`. False if the camera or
    /// the group does not exist.
    pub fn move_camera(&self, camera_id: &str, to_group_path: &str) -> bool {
        self.shared
            .estate
            .lock()
            .move_camera(camera_id, to_group_path)
    }

    pub fn rename_camera(&self, camera_id: &str, name: &str) -> bool {
        self.shared.estate.lock().rename_camera(camera_id, name)
    }

    /// Disabled cameras disappear from `/cameras` (unless `?disabled`) and their RTSP mounts
    /// answer 404.
    pub fn set_camera_enabled(&self, camera_id: &str, enabled: bool) -> bool {
        let found = {
            let mut e = self.shared.estate.lock();
            e.set_enabled(camera_id, enabled)
                .then(|| e.find_camera(camera_id).map(|c| (c.index, c.id.clone())))
                .flatten()
        };
        match found {
            Some((index, id)) => {
                self.rtsp
                    .set_mount_enabled(&format!("/camera/{index}"), enabled);
                self.rtsp.set_mount_enabled(&format!("/live/{id}"), enabled);
                true
            }
            None => false,
        }
    }

    pub fn remove_camera(&self, camera_id: &str) -> bool {
        let removed = self.shared.estate.lock().remove_camera(camera_id);
        match removed {
            Some(c) => {
                self.rtsp.remove_mount(&format!("/camera/{}", c.index));
                self.rtsp.remove_mount(&format!("/live/{}", c.id));
                true
            }
            None => false,
        }
    }

    /// Adds a camera on a new hardware, in a leaf group, with its RTSP mounts.
    pub fn add_camera(&self) -> SimCamera {
        let cam = {
            let mut e = self.shared.estate.lock();
            let c = e.add_camera();
            sim_camera(&e, &c)
        };
        self.mount(cam.index, &cam.id, cam.codec);
        cam
    }

    /// Requests served, per kind: `uris`, `openid-configuration`, `token`, `rest:cameras`,
    /// `rest:cameras/{id}`, `rest:cameraGroups/{id}/cameras`, `soap:Login`,
    /// `recorder:SequencesGet`, ...
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.shared.counts.lock().clone()
    }

    /// The SCS tokens currently valid (for tests that talk to the recorder directly).
    pub fn scs_token_count(&self) -> usize {
        let now = Instant::now();
        self.shared
            .scs_tokens
            .lock()
            .values()
            .filter(|&&exp| exp > now)
            .count()
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.rtsp.shutdown().await;
    }
}

fn sim_camera(e: &Estate, c: &model::Camera) -> SimCamera {
    SimCamera {
        id: c.id.clone(),
        name: c.name.clone(),
        index: c.index,
        codec: c.codec,
        group_paths: e.group_path_of(&c.id),
        enabled: c.enabled,
        hardware_id: c.hardware_id.clone(),
    }
}
