//! Benchmark: reserve + release pairs over HTTP against a running node.
//!
//!   cargo run --release -p vantage --example bench_reserve -- BASE_URL CAMERAS CONCURRENCY SECONDS
//!
//! Each of CONCURRENCY workers loops `POST /api/v1/stream/reserve` (camera `bench-{i % CAMERAS}`,
//! its own user) then `DELETE /api/v1/stream/release/{id}` over keep-alive connections. Prints
//! one JSON line: pairs per second and latency percentiles of each request kind.

use std::time::{Duration, Instant};

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        eprintln!("usage: bench_reserve BASE_URL CAMERAS CONCURRENCY SECONDS");
        std::process::exit(2);
    }
    let base = a[1].trim_end_matches('/').to_owned();
    let cameras: usize = a[2].parse().unwrap_or(1).max(1);
    let conc: usize = a[3].parse().unwrap_or(1).max(1);
    let secs: u64 = a[4].parse().unwrap_or(10);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let t0 = Instant::now();
    let workers: Vec<_> = (0..conc)
        .map(|w| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut reserve = Vec::new();
                let mut release = Vec::new();
                let mut errors = 0u64;
                let body = format!(
                    "{{\"camera_id\":\"bench-{}\",\"user_id\":\"bench-user-{w}\",\"quality\":\"auto\"}}",
                    w % cameras
                );
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = client
                        .post(format!("{base}/api/v1/stream/reserve"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let id = match r {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let v: serde_json::Value = r.json().await.unwrap_or_default();
                            v["reservation_id"].as_str().map(str::to_owned)
                        }
                        _ => None,
                    };
                    reserve.push(t.elapsed());
                    let Some(id) = id else {
                        errors += 1;
                        continue;
                    };
                    let t = Instant::now();
                    match client
                        .delete(format!("{base}/api/v1/stream/release/{id}"))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().as_u16() == 204 => {}
                        _ => errors += 1,
                    }
                    release.push(t.elapsed());
                }
                (reserve, release, errors)
            })
        })
        .collect();
    let (mut res, mut rel, mut errors) = (Vec::new(), Vec::new(), 0);
    for w in workers {
        if let Ok((a, b, e)) = w.await {
            res.extend(a);
            rel.extend(b);
            errors += e;
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    res.sort();
    rel.sort();
    println!(
        "{{\"concurrency\":{conc},\"seconds\":{dt:.1},\"pairs\":{},\"pairs_per_s\":{:.0},\"errors\":{errors},\
         \"reserve_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"max\":{:.3}}},\
         \"release_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"max\":{:.3}}}}}",
        rel.len(),
        rel.len() as f64 / dt,
        pct(&res, 0.5),
        pct(&res, 0.99),
        pct(&res, 1.0),
        pct(&rel, 0.5),
        pct(&rel, 0.99),
        pct(&rel, 1.0),
    );
}
