//! Benchmark: memory and CPU of N live channels with no viewer (each pinned, as the recorder will
//! pin them), ingesting from an RTSP server.
//!
//!   cargo run --release -p vantage --example bench_channels -- URL_TEMPLATE N SECONDS
//!
//! `URL_TEMPLATE` contains `{n}` (1-based), e.g. `rtsp://127.0.0.1:8554/cam{n}`. Prints one JSON
//! line: RSS before and after, per channel, frames and bytes ingested, CPU of this process.

mod common;

use hub::{Channel, ChannelConfig, Hub};
use ingest::{BackoffPolicy, SourceConfig, Transport, spawn_supervisor};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: bench_channels URL_TEMPLATE N SECONDS");
        std::process::exit(2);
    }
    let (template, n, secs): (&str, usize, u64) = (
        &args[1],
        args[2].parse().unwrap_or(100),
        args[3].parse().unwrap_or(10),
    );
    let hub = Hub::new();
    let rss0 = rss_kib();
    let mut pins = Vec::new();
    let mut sups = Vec::new();
    for i in 1..=n {
        let id = format!("cam-{i:03}");
        let ch = hub.add(Channel::new(
            id.clone(),
            ChannelConfig::default(),
            SystemTime::now(),
        ));
        let Ok(url) = url::Url::parse(&template.replace("{n}", &i.to_string())) else {
            eprintln!("bad URL template");
            std::process::exit(2);
        };
        let src = SourceConfig {
            camera_id: id.into(),
            url,
            username: None,
            password: None,
            transport: Transport::Tcp,
        };
        pins.push(ch.pin());
        sups.push(spawn_supervisor(
            ch,
            src,
            BackoffPolicy::default(),
            Arc::new(base::RealClocks),
        ));
    }
    // Let every channel fill a whole GOP (2 s) before measuring.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let online = hub
        .all()
        .iter()
        .filter(|c| c.status().state == hub::State::Online)
        .count();
    let frames0: u64 = hub.all().iter().map(|c| c.stats().frames_in).sum();
    let bytes0: u64 = hub.all().iter().map(|c| c.stats().bytes_in).sum();
    let (cpu0, t0) = (common::process_cpu_ticks(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let dt = t0.elapsed().as_secs_f64();
    let cpu_pct = (common::process_cpu_ticks() - cpu0) as f64 / 100.0 / dt * 100.0;
    let frames: u64 = hub.all().iter().map(|c| c.stats().frames_in).sum::<u64>() - frames0;
    let bytes: u64 = hub.all().iter().map(|c| c.stats().bytes_in).sum::<u64>() - bytes0;
    let rss1 = rss_kib();
    println!(
        "{{\"channels\":{n},\"online\":{online},\"rss_before_kib\":{rss0},\"rss_after_kib\":{rss1},\
         \"rss_per_channel_kib\":{:.0},\"fps_per_channel\":{:.2},\"mbit_s_total\":{:.1},\
         \"cpu_pct_of_one_core\":{cpu_pct:.1},\"window_s\":{dt:.1}}}",
        (rss1.saturating_sub(rss0)) as f64 / n as f64,
        frames as f64 / dt / n as f64,
        bytes as f64 * 8.0 / 1e6 / dt,
    );
    drop(pins);
    for s in sups {
        s.shutdown().await;
    }
}
