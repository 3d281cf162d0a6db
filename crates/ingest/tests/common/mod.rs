//! Helpers shared by the integration tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hub::{Channel, ChannelConfig, State, Status};
use ingest::{SourceConfig, Transport};
use media::{Codec, Frame};
use rtsp_server::ClipSource;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, TcpStream};

pub fn clip(name: &str, codec: Codec) -> Arc<ClipSource> {
    let path = format!("{}/../../fixtures/clips/{name}", env!("CARGO_MANIFEST_DIR"));
    Arc::new(ClipSource::from_file(&path, codec).expect("fixture clip"))
}

pub fn source(id: &str, url: &str, transport: Transport) -> SourceConfig {
    SourceConfig {
        camera_id: id.into(),
        url: url::Url::parse(url).expect("test url"),
        username: None,
        password: None,
        transport,
    }
}

pub fn channel(id: &str) -> Arc<Channel> {
    let cfg = ChannelConfig {
        idle_grace: Duration::from_millis(300),
        ..ChannelConfig::default()
    };
    Channel::new(id, cfg, SystemTime::now())
}

/// Polls the channel's status every 2 ms; returns the status and how long it took.
pub async fn wait_state(ch: &Channel, want: State, within: Duration) -> (Status, Duration) {
    let t0 = Instant::now();
    loop {
        let s = ch.status();
        if s.state == want {
            return (s, t0.elapsed());
        }
        assert!(
            t0.elapsed() < within,
            "{}: not {want:?} within {within:?}; status {s:?}",
            ch.id()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Records every state the channel passes through (polled every 1 ms) until stopped.
pub fn record_states(ch: Arc<Channel>) -> (tokio::task::JoinHandle<Vec<State>>, Arc<AtomicUsize>) {
    let stop = Arc::new(AtomicUsize::new(0));
    let stop2 = stop.clone();
    let h = tokio::spawn(async move {
        let mut v = vec![ch.status().state];
        while stop2.load(Ordering::Relaxed) == 0 {
            let s = ch.status().state;
            if v.last() != Some(&s) {
                v.push(s);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        v
    });
    (h, stop)
}

pub async fn recv_timeout(sub: &hub::Subscriber, d: Duration) -> Frame {
    tokio::time::timeout(d, sub.recv())
        .await
        .expect("frame within timeout")
}

/// A TCP proxy in front of `target` that counts connections made and currently open.
pub struct CountingProxy {
    pub addr: std::net::SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    pub async fn start(target: std::net::SocketAddr) -> CountingProxy {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = l.local_addr().expect("proxy addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (a, o) = (accepted.clone(), open.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let o = o.clone();
                tokio::spawn(async move {
                    if let Ok(mut s) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        CountingProxy {
            addr,
            accepted,
            open,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}{path}", self.addr)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub mod leak;
