//! `vantage export`: asks a running node for an export, follows it with a progress bar,
//! downloads the MP4 and its manifest, and verifies them against the node's public key.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportArgs {
    /// The node's base URL (`http://host:port`).
    pub server: String,
    pub camera: String,
    /// RFC 3339 times.
    pub from: String,
    pub to: String,
    /// Where the MP4 goes; its manifest goes to `<output>.manifest.json`.
    pub output: PathBuf,
    pub include_audio: bool,
    pub created_by: Option<String>,
    /// How often the job's status is asked for.
    pub poll: Duration,
}

/// Runs an export end to end. `Ok(report)` when every step worked (the report says whether
/// verification passed); `Err` says which step failed.
pub async fn run(a: &ExportArgs) -> Result<evidence::Report, String> {
    let base = a.server.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let mut body = json!({
        "camera_id": a.camera,
        "start_time": a.from,
        "end_time": a.to,
        "format": "mp4",
        "include_audio": a.include_audio,
    });
    if let (Some(by), Some(o)) = (&a.created_by, body.as_object_mut()) {
        o.insert("created_by".into(), Value::String(by.clone()));
    }
    let resp = client
        .post(format!("{base}/api/v1/export"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {base}/api/v1/export: {e}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if status.as_u16() != 202 {
        return Err(format!(
            "the server refused the export ({status}): {}",
            error_text(&v)
        ));
    }
    let Some(id) = v["export_id"].as_str().map(str::to_owned) else {
        return Err(format!("the server's answer has no export_id: {v}"));
    };
    eprintln!("export {id} {}", v["status"].as_str().unwrap_or("?"));

    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:40}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let job = loop {
        let r = client
            .get(format!("{base}/api/v1/exports/{id}"))
            .send()
            .await
            .map_err(|e| format!("GET export {id}: {e}"))?;
        let st = r.status();
        let j: Value = r.json().await.unwrap_or(Value::Null);
        if !st.is_success() {
            bar.abandon();
            return Err(format!("export {id}: {st}: {}", error_text(&j)));
        }
        bar.set_position(j["progress_percent"].as_u64().unwrap_or(0));
        let s = j["status"].as_str().unwrap_or("").to_owned();
        bar.set_message(s.clone());
        match s.as_str() {
            "completed" => {
                bar.finish_with_message("completed");
                break j;
            }
            "failed" | "cancelled" => {
                bar.abandon_with_message(s.clone());
                return Err(format!(
                    "export {id} {s}: {}",
                    j["error"].as_str().unwrap_or("no reason given")
                ));
            }
            _ => tokio::time::sleep(a.poll).await,
        }
    };

    let manifest_path = manifest_path(&a.output);
    download(
        &client,
        &format!("{base}/api/v1/exports/{id}/download"),
        &a.output,
    )
    .await?;
    download(
        &client,
        &format!("{base}/api/v1/exports/{id}/manifest"),
        &manifest_path,
    )
    .await?;
    let pem = client
        .get(format!("{base}/api/v1/exports/public-key"))
        .send()
        .await
        .map_err(|e| format!("GET public key: {e}"))?;
    if !pem.status().is_success() {
        return Err(format!("GET public key: {}", pem.status()));
    }
    let pem = pem
        .text()
        .await
        .map_err(|e| format!("GET public key: {e}"))?;
    let (out, man) = (a.output.clone(), manifest_path.clone());
    let report = tokio::task::spawn_blocking(move || evidence::verify(&out, &man, Some(&pem)))
        .await
        .map_err(|e| format!("verification: {e}"))?;
    eprintln!(
        "wrote {} ({} bytes, {} frames) and {}",
        a.output.display(),
        job["size_bytes"].as_u64().unwrap_or(0),
        job["frames"].as_u64().unwrap_or(0),
        manifest_path.display()
    );
    Ok(report)
}

/// `<output>.manifest.json`.
pub fn manifest_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

fn error_text(v: &Value) -> String {
    let e = &v["error"];
    match (e["message"].as_str(), e["field"].as_str()) {
        (Some(m), Some(f)) => format!("{m} (field {f})"),
        (Some(m), None) => m.to_owned(),
        _ => v.to_string(),
    }
}

/// Streams `url` to `to` (through `<to>.part`, renamed when complete).
async fn download(client: &reqwest::Client, url: &str, to: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut r = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("GET {url}: {}", r.status()));
    }
    let mut part = to.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let mut f = tokio::fs::File::create(&part)
        .await
        .map_err(|e| format!("creating {}: {e}", part.display()))?;
    while let Some(chunk) = r.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
        f.write_all(&chunk)
            .await
            .map_err(|e| format!("writing {}: {e}", part.display()))?;
    }
    f.sync_all()
        .await
        .map_err(|e| format!("syncing {}: {e}", part.display()))?;
    drop(f);
    tokio::fs::rename(&part, to)
        .await
        .map_err(|e| format!("renaming to {}: {e}", to.display()))
}
