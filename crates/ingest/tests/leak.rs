//! 1,000 forced reconnects leak nothing: tasks, file descriptors and memory return to their
//! baseline. Alone in its own test binary so that no other test disturbs the process-wide counts.

mod common;

use common::leak::*;
use common::*;
use hub::State;
use ingest::{BackoffPolicy, Transport, spawn_supervisor};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_forced_reconnects_leak_nothing() {
    let t_start = Instant::now();
    // A "camera" that accepts and immediately hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    let accept_task = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            acc.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });

    let ch = channel("cam-leak");
    let pin = ch.pin();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tasks0 = alive_tasks();
    let fds0 = open_fds();

    let sup = spawn_supervisor(
        ch.clone(),
        source("cam-leak", &format!("rtsp://{addr}/x"), Transport::Tcp),
        BackoffPolicy::fixed(Duration::from_millis(1)),
        Arc::new(base::RealClocks),
    );
    // Warm up (allocator pools, lazily created runtime structures), then take the baselines.
    while accepted.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rss_warm = rss_bytes();
    let fds_warm = open_fds();
    let cycles_t0 = Instant::now();
    while accepted.load(Ordering::SeqCst) < 1_050 {
        assert!(
            cycles_t0.elapsed() < Duration::from_secs(30),
            "too slow: {} cycles",
            accepted.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cycles = cycles_t0.elapsed();
    let st = ch.status();
    // Offline between attempts and during retries (a retry keeps the failure state).
    assert_eq!(st.state, State::Offline, "{st:?}");
    assert!(st.failed_attempts >= 1_000, "{st:?}");
    eprintln!("last error: {}", st.last_error.unwrap_or_default());

    // While still cycling: supervisor + accept loop only; fds within the warm-up baseline plus
    // the one connection that may be in flight.
    let tasks_mid = alive_tasks();
    let fds_mid = open_fds();
    let rss_mid = rss_bytes();
    eprintln!(
        "1000 cycles in {cycles:?}: tasks {tasks0} -> {tasks_mid}, fds {fds0}/{fds_warm} -> \
         {fds_mid}, rss {} KiB -> {} KiB",
        rss_warm / 1024,
        rss_mid / 1024
    );
    assert!(tasks_mid <= tasks0 + 1, "tasks {tasks0} -> {tasks_mid}");
    assert!(fds_mid <= fds_warm + 3, "fds {fds_warm} -> {fds_mid}");
    assert!(
        rss_mid < rss_warm + 4 * 1024 * 1024,
        "rss grew {} KiB",
        (rss_mid - rss_warm) / 1024
    );

    // Stopping returns everything to the state before the supervisor existed.
    sup.shutdown().await;
    drop(pin);
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
    accept_task.abort();
    eprintln!("total {:?}", t_start.elapsed());
}
