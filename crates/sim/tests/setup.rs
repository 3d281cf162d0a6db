//! The setup `vantage sim xprotect` prints works on its own: the `milestone:` block validates
//! and names the live method whose RTSP paths the simulator serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sim::{SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The status code of an RTSP DESCRIBE of `url`.
async fn describe(url: &str) -> u16 {
    let u = url::Url::parse(url).expect("rtsp url");
    let addr = format!(
        "{}:{}",
        u.host_str().expect("host"),
        u.port().expect("port")
    );
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n");
    c.write_all(req.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.expect("read");
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an RTSP answer: {head}"))
}

#[tokio::test]
async fn printed_milestone_block_validates_and_names_the_served_method() {
    let sim = Simulator::start(SimConfig {
        cameras: 3,
        groups: 2,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let block = sim.milestone_yaml();
    eprintln!("{block}");
    let yaml = format!("agencies: [{{ id: OTHER, max_streams: 10 }}]\n{block}");
    let cfg = settings::load_str(&yaml, Vec::new()).unwrap_or_else(|p| panic!("{p:?}\n{yaml}"));
    let m = cfg.milestone.expect("milestone");
    assert_eq!(m.method, settings::LiveMethod::OnvifBridge);
    assert_eq!(m.server_url.as_str(), format!("{}/", sim.server_url()));
    assert_eq!(m.username, sim.config().username);
    assert_eq!(m.password, sim.config().password);
    assert!(m.recording_server.is_some());
    let base = m.rtsp_base_url.expect("rtsp_base_url");
    // The method's path (the Open Network Bridge's /live/{camera_guid}) is served for every
    // camera; the default rtsp_direct template with the GUID is not (the defect: 404).
    for cam in sim.cameras() {
        let live = format!("{}/live/{}", base.as_str().trim_end_matches('/'), cam.id);
        assert_eq!(describe(&live).await, 200, "{live}");
        let direct = format!("{}/camera/{}", base.as_str().trim_end_matches('/'), cam.id);
        assert_eq!(describe(&direct).await, 404, "{direct}");
    }
    sim.shutdown().await;
}
