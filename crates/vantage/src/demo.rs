//! `vantage demo`: an RTSP server inside the process plays the committed fixture clips as eight
//! cameras of four agencies, and a node serves them. Nothing needs to be installed.

use base::Error;
use media::Codec;
use rtsp_server::{ClipSource, RtspServer};
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

/// (id, name, agency, location, clip)
const CAMERAS: [(&str, &str, &str, &str, &str); 8] = [
    (
        "cam-001-sheikh-zayed",
        "Sheikh Zayed Rd - Camera 1",
        "DUBAI_POLICE",
        "Sheikh Zayed Rd / Interchange 1",
        "h264_a",
    ),
    (
        "cam-002-al-khail",
        "Al Khail Rd - Camera 2",
        "DUBAI_POLICE",
        "Al Khail Rd / Al Quoz",
        "h264_b",
    ),
    (
        "cam-003-union-station",
        "Union Station - Platform 1",
        "METRO",
        "Union Metro Station",
        "h264_c",
    ),
    (
        "cam-004-burjuman",
        "BurJuman - Concourse",
        "METRO",
        "BurJuman Metro Station",
        "h264_d",
    ),
    (
        "cam-005-gold-souq-bus",
        "Gold Souq Bus Station",
        "BUS",
        "Deira, Gold Souq",
        "h264_a",
    ),
    (
        "cam-006-al-ghubaiba",
        "Al Ghubaiba Bus Station",
        "BUS",
        "Bur Dubai, Al Ghubaiba",
        "h264_b",
    ),
    (
        "cam-007-creek-abra",
        "Dubai Creek - Abra Station",
        "OTHER",
        "Al Seef abra station",
        "h264_c",
    ),
    (
        "cam-008-airport-t3",
        "Airport Road - Terminal 3",
        "OTHER",
        "DXB Terminal 3 approach",
        "h264_d",
    ),
];

/// Ports of the demo; 0 picks a free one.
#[derive(Clone, Debug)]
pub struct DemoPorts {
    pub http: SocketAddr,
    pub udp_port: u16,
    pub rtsp: SocketAddr,
    /// Where the management database (audit log) goes.
    pub data_dir: std::path::PathBuf,
}

impl Default for DemoPorts {
    fn default() -> Self {
        DemoPorts {
            http: SocketAddr::from(([127, 0, 0, 1], 8088)),
            udp_port: 8189,
            rtsp: SocketAddr::from(([127, 0, 0, 1], 8554)),
            data_dir: "./data".into(),
        }
    }
}

/// Starts the in-process RTSP server with one mount per clip.
pub async fn start_cameras(addr: SocketAddr) -> Result<RtspServer, Error> {
    let server = RtspServer::bind(&addr.to_string()).await?;
    for (name, data) in CLIPS {
        let clip = ClipSource::from_annexb(Codec::H264, data, 25)
            .map_err(|e| e.context(format_args!("fixture clip {name}")))?;
        server.add_clip_mount(&format!("/{name}"), Arc::new(clip));
    }
    Ok(server)
}

/// The demo's configuration, pointing at an RTSP server on `rtsp`.
pub fn config(ports: &DemoPorts, rtsp: SocketAddr) -> Result<settings::Config, Error> {
    let mut yaml = format!(
        "server: {{ listen: \"{}\" }}\nwebrtc: {{ udp_port: {}, advertise: [\"127.0.0.1\"] }}\n\
         storage: {{ data_dir: \"{}\" }}\n\
         live: {{ idle_grace: 10s }}\nagencies:\n\
         \x20 - {{ id: DUBAI_POLICE, name: \"Dubai Police\", name_ar: \"شرطة دبي\", max_streams: 50 }}\n\
         \x20 - {{ id: METRO, name: \"Metro\", name_ar: \"المترو\", max_streams: 30 }}\n\
         \x20 - {{ id: BUS, name: \"Bus\", name_ar: \"الحافلات\", max_streams: 20 }}\n\
         \x20 - {{ id: OTHER, name: \"Other agencies\", name_ar: \"جهات أخرى\", max_streams: 400 }}\n\
         cameras:\n",
        ports.http,
        ports.udp_port,
        ports.data_dir.display()
    );
    for (id, name, agency, location, clip) in CAMERAS {
        yaml.push_str(&format!(
            "  - {{ id: {id}, name: \"{name}\", agency: {agency}, location: \"{location}\", \
             rtsp_url: \"rtsp://{rtsp}/{clip}\", manufacturer: \"Vantage\", model: \"fixture {clip}\" }}\n"
        ));
    }
    settings::load_str(&yaml, std::env::vars()).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        base::err!(Internal, "demo configuration: {}", list.join("; "))
    })
}

/// A running demo: cameras and node.
pub struct Demo {
    pub cameras: RtspServer,
    pub node: crate::Node,
}

/// Starts the demo cameras and a node serving them.
pub async fn start(ports: DemoPorts) -> Result<Demo, Error> {
    let cameras = start_cameras(ports.rtsp).await?;
    let cfg = config(&ports, cameras.local_addr())?;
    let node = crate::Node::start(cfg)
        .await
        .map_err(|e| e.context("demo node"))?;
    Ok(Demo { cameras, node })
}

impl Demo {
    pub async fn shutdown(self) {
        self.node.shutdown().await;
        self.cameras.shutdown().await;
    }
}

/// Used by `main` to turn a port option into an address.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
