//! Full RTSP sessions ended by server restarts leak nothing. Alone in its own test binary so that
//! no other test disturbs the process-wide counts.

mod common;

use common::leak::*;
use common::*;
use hub::State;
use ingest::{BackoffPolicy, Transport, spawn_supervisor};
use media::Codec;
use rtsp_server::RtspServer;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_session_restarts_leak_nothing() {
    let clip = clip("h264_d.h264", Codec::H264);
    let ch = channel("cam-restarts");
    let sub = ch.subscribe();
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr();
    server.shutdown().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tasks0 = alive_tasks();
    let fds0 = open_fds();
    let sup = spawn_supervisor(
        ch.clone(),
        source(
            "cam-restarts",
            &format!("rtsp://{addr}/cam"),
            Transport::Tcp,
        ),
        BackoffPolicy::fixed(Duration::from_millis(10)),
        Arc::new(base::RealClocks),
    );
    for _ in 0..20 {
        let server = RtspServer::bind(&addr.to_string()).await.expect("rebind");
        server.add_clip_mount("/cam", clip.clone());
        wait_state(&ch, State::Online, Duration::from_secs(5)).await;
        recv_timeout(&sub, Duration::from_secs(2)).await;
        server.shutdown().await;
        wait_state(&ch, State::Offline, Duration::from_secs(5)).await;
        while sub.try_recv().is_some() {}
    }
    eprintln!(
        "20 restarts: {} frames, {} failed attempts recorded",
        ch.stats().frames_in,
        ch.status().failed_attempts
    );
    sup.shutdown().await;
    drop(sub);
    assert!(
        settle(|| alive_tasks() == tasks0).await,
        "tasks {tasks0} -> {}",
        alive_tasks()
    );
    assert!(
        settle(|| open_fds() <= fds0 + 2).await,
        "fds {fds0} -> {}",
        open_fds()
    );
}
