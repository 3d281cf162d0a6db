//! `vantage demo`: an RTSP server inside the process plays the committed fixture clips as eight
//! cameras of four agencies, and a node serves them. Nothing needs to be installed. The first
//! clip (`/h264_a`) has an AAC audio track (an 880 Hz tone with a short beep every second), which
//! the recorder records.

use base::Error;
use media::Codec;
use rtsp_server::{AudioClip, ClipSource, RtspServer};
use std::net::SocketAddr;
use std::sync::Arc;

/// The committed fixture clips, compiled into the binary so the demo runs from any directory.
pub const CLIPS: [(&str, &[u8]); 4] = [
    (
        "h264_a",
        include_bytes!("../../../fixtures/clips/h264_a.h264"),
    ),
    (
        "h264_b",
        include_bytes!("../../../fixtures/clips/h264_b.h264"),
    ),
    (
        "h264_c",
        include_bytes!("../../../fixtures/clips/h264_c.h264"),
    ),
    (
        "h264_d",
        include_bytes!("../../../fixtures/clips/h264_d.h264"),
    ),
];

/// The audio of the first clip: 10 s of AAC-LC, 16 kHz mono, looped with the video.
pub const AUDIO: &[u8] = include_bytes!("../../../fixtures/clips/aac_16k_mono.adts");

/// Ports of the demo; 0 picks a free one.
#[derive(Clone, Debug)]
pub struct DemoPorts {
    pub http: SocketAddr,
    pub udp_port: u16,
    /// Where the management database (audit log) goes.
    pub data_dir: std::path::PathBuf,
}

impl Default for DemoPorts {
    fn default() -> Self {
        DemoPorts {
            http: SocketAddr::from(([127, 0, 0, 1], 8088)),
            udp_port: 8189,
            data_dir: "./data".into(),
        }
    }
}

/// Starts the in-process RTSP server with one mount per clip.
pub async fn start_cameras(addr: SocketAddr) -> Result<RtspServer, Error> {
    let server = RtspServer::bind(&addr.to_string()).await?;
    for (i, (name, data)) in CLIPS.into_iter().enumerate() {
        let mut clip = ClipSource::from_annexb(Codec::H264, data, 25)
            .map_err(|e| e.context(format_args!("fixture clip {name}")))?;
        if i == 0 {
            let audio = AudioClip::from_adts(AUDIO).map_err(|e| e.context("fixture audio"))?;
            clip = clip.with_audio(audio);
        }
        server.add_clip_mount(&format!("/{name}"), Arc::new(clip));
    }
    Ok(server)
}

/// Agency rules of the demo: the simulator's top-level camera groups.
const RULES: &str = "  agency_rules:\n    - { group: \"Dubai Police\", agency: DUBAI_POLICE }\n    \
                     - { group: \"Metro\", agency: METRO }\n    - { group: \"Bus\", agency: BUS }\n";

/// The demo's configuration: no camera of its own, everything from the XProtect simulator,
/// through the `milestone:` block the simulator prints for `vantage sim xprotect`.
pub fn config(ports: &DemoPorts, sim: &sim::Simulator) -> Result<settings::Config, Error> {
    let yaml = format!(
        "server: {{ listen: \"{}\" }}\nwebrtc: {{ udp_port: {}, advertise: [\"127.0.0.1\"] }}\n\
         storage: {{ data_dir: \"{}\", max_usage: 2GB }}\n\
         live: {{ idle_grace: 10s }}\nagencies:\n\
         \x20 - {{ id: DUBAI_POLICE, name: \"Dubai Police\", name_ar: \"شرطة دبي\", max_streams: 50 }}\n\
         \x20 - {{ id: METRO, name: \"Metro\", name_ar: \"المترو\", max_streams: 30 }}\n\
         \x20 - {{ id: BUS, name: \"Bus\", name_ar: \"الحافلات\", max_streams: 20 }}\n\
         \x20 - {{ id: OTHER, name: \"Other agencies\", name_ar: \"جهات أخرى\", max_streams: 400 }}\n\
         {}  sync_interval: 1m\n  recording: continuous\n  retention_days: 7\n{RULES}",
        ports.http,
        ports.udp_port,
        ports.data_dir.display(),
        sim.milestone_yaml(),
    );
    settings::load_str(&yaml, std::env::vars()).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        base::err!(Internal, "demo configuration: {}", list.join("; "))
    })
}

/// A running demo: the XProtect simulator, a node serving its cameras, and its users.
pub struct Demo {
    pub sim: sim::Simulator,
    pub node: crate::Node,
    pub users: Vec<DemoUser>,
}

/// A demo login, printed by `vantage demo`.
pub struct DemoUser {
    pub username: String,
    pub role: auth::Role,
    /// `*` for every agency.
    pub agency: String,
    pub password: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for DemoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoUser")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("agency", &self.agency)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A random password (16 bytes from the OS, base64url: 22 characters).
fn random_password() -> zeroize::Zeroizing<String> {
    // An API key's secret is 32 random bytes in base64url; its first 22 characters serve.
    let key = auth::NewApiKey::generate();
    let secret = key.token().rsplit('_').next().unwrap_or_default();
    zeroize::Zeroizing::new(secret.chars().take(22).collect())
}

/// The demo's users (design 0009, issue 11): `admin` (every agency), and for each agency a
/// supervisor, an operator and a viewer (`operator-metro`, ...), each with a new random password
/// on every start (a previous run's are replaced: only digests are stored, so they could not be
/// shown again). Created or updated in the demo's data directory.
pub fn demo_users(
    data_dir: &std::path::Path,
    agencies: &[String],
    now_ms: i64,
) -> Result<Vec<DemoUser>, Error> {
    let users = store::UserStore::open(&crate::users_cli::db_path(data_dir))?;
    let passwords = auth::Passwords::new();
    let mut wanted = vec![("admin".to_owned(), auth::Role::Admin, "*".to_owned())];
    for a in agencies {
        for role in [
            auth::Role::Supervisor,
            auth::Role::Operator,
            auth::Role::Viewer,
        ] {
            let name = format!("{}-{}", role.as_str(), a.to_lowercase().replace('_', "-"));
            wanted.push((name, role, a.clone()));
        }
    }
    let mut out = Vec::new();
    for (username, role, agency) in wanted {
        let password = random_password();
        let hash = passwords.hash(&password)?;
        let scope = auth::Agencies::from_list([agency.clone()]);
        match users.get_by_username(&username)? {
            Some(u) => {
                users.update(
                    &u.id,
                    store::UserUpdate {
                        role: Some(role),
                        agencies: Some(scope),
                        password_hash: Some(hash),
                        disabled: Some(false),
                    },
                    now_ms,
                )?;
            }
            None => {
                users.create(
                    store::NewUser {
                        username: username.clone(),
                        password_hash: Some(hash),
                        role,
                        agencies: scope,
                    },
                    now_ms,
                )?;
            }
        }
        out.push(DemoUser {
            username,
            role,
            agency,
            password,
        });
    }
    Ok(out)
}

/// Forgets what a previous demo run stored about its simulator: the last known XProtect catalog
/// (a snapshot in `data_dir/vantage.db`) names that run's RTSP port, which is gone, so a node
/// starting from it would try every camera there (one warning per camera) until its first sync.
/// Each demo run has a new simulator; its first sync brings the catalog. Returns how many
/// snapshots were dropped.
pub fn forget_previous_simulator(data_dir: &std::path::Path) -> Result<usize, Error> {
    let db = data_dir.join("vantage.db");
    if !db.exists() {
        return Ok(0);
    }
    let n = store::Snapshots::open(&db)?.clear()?;
    if n > 0 {
        tracing::info!(
            "demo: dropped the catalog of the previous run's simulator; the new one is synced"
        );
    }
    Ok(n)
}

/// Starts the XProtect simulator (8 H.264 cameras in nested agency groups) and a node that
/// discovers them through the XProtect integration, as a real deployment would.
pub async fn start(ports: DemoPorts) -> Result<Demo, Error> {
    let sim = sim::Simulator::start(sim::SimConfig {
        cameras: 8,
        groups: 10,
        ..sim::SimConfig::default()
    })
    .await?;
    let cfg = config(&ports, &sim)?;
    forget_previous_simulator(&ports.data_dir).map_err(|e| e.context("demo data"))?;
    let node = crate::Node::start(cfg.clone())
        .await
        .map_err(|e| e.context("demo node"))?;
    let agencies: Vec<String> = cfg.agencies.iter().map(|a| a.id.clone()).collect();
    let dir = ports.data_dir.clone();
    let now = base::clock::unix_ms(std::time::SystemTime::now());
    let users = tokio::task::spawn_blocking(move || demo_users(&dir, &agencies, now))
        .await
        .map_err(|e| base::err!(Internal, "demo users: {e}"))?
        .map_err(|e| e.context("demo users"))?;
    Ok(Demo { sim, node, users })
}

impl Demo {
    pub async fn shutdown(self) {
        self.node.shutdown().await;
        self.sim.shutdown().await;
    }
}

/// Used by `main` to turn a port option into an address.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
