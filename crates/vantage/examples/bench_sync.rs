//! Benchmark: one full XProtect catalog sync (discovery, login, cameras, hardware, recording
//! servers, the camera-group tree, agency mapping, catalog swap, snapshot saved), as the node runs
//! it, against a running simulator or VMS.
//!
//!   cargo run --release -p vantage --example bench_sync -- SERVER_URL RTSP_BASE_URL USER PASSWORD
//!
//! Prints one JSON line: wall time, requests made, cameras/groups, peak RSS of this process.

use std::sync::Arc;
use std::time::Instant;

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        eprintln!("usage: bench_sync SERVER_URL RTSP_BASE_URL USER PASSWORD");
        std::process::exit(2);
    }
    let yaml = format!(
        "agencies:\n  - {{ id: DUBAI_POLICE, max_streams: 50 }}\n  - {{ id: METRO, max_streams: 30 }}\n  \
         - {{ id: BUS, max_streams: 20 }}\n  - {{ id: OTHER, max_streams: 400 }}\nmilestone:\n  \
         server_url: \"{}\"\n  rtsp_base_url: \"{}\"\n  username: \"{}\"\n  password: \"{}\"\n  \
         method: onvif_bridge\n  agency_rules:\n    - {{ group: \"Dubai Police\", agency: DUBAI_POLICE }}\n    \
         - {{ group: \"Metro\", agency: METRO }}\n    - {{ group: \"Bus\", agency: BUS }}\n",
        a[1], a[2], a[3], a[4]
    );
    let cfg = match settings::load_str(&yaml, Vec::new()) {
        Ok(c) => c,
        Err(p) => {
            eprintln!("{p:?}");
            std::process::exit(2);
        }
    };
    let Some(m) = cfg.milestone.clone() else {
        std::process::exit(2);
    };
    let dir = std::env::temp_dir().join(format!("vantage-bench-sync-{}", std::process::id()));
    let snapshots = match store::Snapshots::open(&dir.join("vantage.db")) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let catalog = Arc::new(vms::catalog::Catalog::new(&[]));
    let rss0 = status_kib("VmRSS:");
    let sync = vms::sync::VmsSync::new(m, catalog.clone(), snapshots, Arc::new(base::RealClocks));
    let t0 = Instant::now();
    let r = sync.sync_once().await;
    let wall = t0.elapsed();
    let status = sync.status();
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Ok(diff) => println!(
            "{{\"wall_ms\":{},\"requests\":{},\"cameras\":{},\"groups\":{},\"added\":{},\
             \"rss_before_kib\":{rss0},\"peak_rss_kib\":{}}}",
            wall.as_millis(),
            status.requests_last_sync,
            status.cameras,
            status.groups,
            diff.added.len(),
            status_kib("VmHWM:"),
        ),
        Err(e) => {
            eprintln!("sync failed: {e}");
            std::process::exit(1);
        }
    }
}
