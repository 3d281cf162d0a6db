//! XProtect integration against the simulator (`crates/sim`): catalog sync and agency mapping,
//! changes between syncs, the stale catalog when XProtect is down, recorded sequences, login
//! failures, malformed answers, and live video of a VMS camera through WHEP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use sim::{Faults, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::time::Duration;

/// Agencies by top-level group, as an operator would configure them.
const RULES: &str = r#"
  agency_rules:
    - { group: "Dubai Police", agency: DUBAI_POLICE }
    - { group: "Metro", agency: METRO }
    - { group: "Bus", agency: BUS }
"#;

fn milestone_yaml(sim: &Simulator, password: &str) -> String {
    format!(
        "live: {{ idle_grace: 10s }}\nmilestone:\n  server_url: \"{}\"\n  rtsp_base_url: \"{}\"\n  \
         username: \"rta-integration\"\n  password: \"{password}\"\n  domain: \"\"\n  method: onvif_bridge\n  \
         sync_interval: 1h\n  api: {{ max_camera_lists_per_minute: 1000 }}\n{RULES}",
        sim.server_url(),
        sim.rtsp_base_url()
    )
}

async fn sim(cameras: usize, groups: usize) -> Simulator {
    Simulator::start(SimConfig {
        cameras,
        groups,
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

/// A node on the simulator, with its first sync done.
async fn node(sim: &Simulator, data_dir: Option<&std::path::Path>) -> (vantage::Node, Api) {
    let mut cfg = node_config_with(&[], &milestone_yaml(sim, "sim-password"));
    if let Some(d) = data_dir {
        cfg.storage.data_dir = d.to_owned();
    }
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    wait_synced(&api, 1).await;
    (node, api)
}

async fn wait_synced(api: &Api, syncs: u64) -> Value {
    for _ in 0..200 {
        let (_, s) = api.get("/api/v1/vms/status").await;
        if s["syncs"].as_u64().unwrap_or(0) >= syncs {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no sync: {}", api.get("/api/v1/vms/status").await.1);
}

fn expected_agency(paths: &[String]) -> &'static str {
    let top = |p: &String| p.split('/').next().unwrap_or("").to_owned();
    match paths.iter().map(top).next().as_deref() {
        Some("Dubai Police") => "DUBAI_POLICE",
        Some("Metro") => "METRO",
        Some("Bus") => "BUS",
        _ => "OTHER",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_cameras_in_25_nested_groups_are_synced_and_mapped() {
    let sim = sim(500, 25).await;
    assert_eq!(sim.group_paths().len(), 25);
    assert!(
        sim.group_paths()
            .iter()
            .any(|p| p.matches('/').count() >= 2),
        "nested 3 deep"
    );
    let (node, api) = node(&sim, None).await;
    let (_, status) = api.get("/api/v1/vms/status").await;
    assert_eq!(status["counts"]["cameras"], 500, "{status}");
    assert_eq!(status["counts"]["groups"], 25, "{status}");
    assert_eq!(status["stale"], false);
    assert!(status["error"].is_null(), "{status}");
    let (_, cams) = api.get("/api/v1/cameras").await;
    assert_eq!(cams["total"], 500);
    let by_id: BTreeMap<String, Value> = cams["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c.clone()))
        .collect();
    let mut per_agency: BTreeMap<&str, usize> = BTreeMap::new();
    let mut in_two_groups = 0;
    for c in sim.cameras() {
        let got = &by_id[&c.id];
        let want = expected_agency(&c.group_paths);
        // A camera in two groups of different agencies takes the first rule that matches.
        if c.group_paths.len() > 1 {
            in_two_groups += 1;
            assert_eq!(
                got["groups"].as_array().unwrap().len(),
                c.group_paths.len(),
                "{got}"
            );
        } else {
            assert_eq!(
                got["agency"], want,
                "{} in {:?}: {got}",
                c.name, c.group_paths
            );
        }
        assert_eq!(got["source"], "xprotect");
        assert!(got["recording_server"].is_string(), "{got}");
        *per_agency.entry(want).or_default() += 1;
    }
    assert!(
        in_two_groups >= 1,
        "the simulator puts a camera in two groups"
    );
    assert!(per_agency.len() >= 3, "{per_agency:?}");
    // Cameras in no mapped group are reported.
    let unmapped = status["unmapped_cameras"].as_array().unwrap().len();
    let others = by_id.values().filter(|c| c["agency"] == "OTHER").count();
    assert_eq!(unmapped, others, "{status}");
    node.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_xprotect_are_applied_on_the_next_sync() {
    let sim = sim(12, 8).await;
    let (node, api) = node(&sim, None).await;
    let vms = node.services.vms.clone().expect("vms");
    let cams = sim.cameras();
    // A Metro camera moves to a Bus group; another is renamed, one removed, one added.
    let mover = cams
        .iter()
        .find(|c| expected_agency(&c.group_paths) == "METRO" && c.group_paths.len() == 1)
        .expect("a metro camera");
    assert_eq!(
        api.get(&format!("/api/v1/cameras/{}", mover.id)).await.1["agency"],
        "METRO"
    );
    let bus_group = sim
        .group_paths()
        .into_iter()
        .find(|p| p.starts_with("Bus"))
        .unwrap();
    assert!(sim.move_camera(&mover.id, &bus_group));
    let renamed = cams.iter().find(|c| c.id != mover.id).unwrap();
    assert!(sim.rename_camera(&renamed.id, "Renamed camera"));
    let removed = cams
        .iter()
        .rev()
        .find(|c| c.id != mover.id && c.id != renamed.id)
        .unwrap();
    assert!(sim.remove_camera(&removed.id));
    let added = sim.add_camera();
    let diff = vms.sync_once().await.expect("sync");
    assert_eq!(diff.moved, vec![mover.id.clone()]);
    assert_eq!(diff.renamed, vec![renamed.id.clone()]);
    assert_eq!(diff.removed, vec![removed.id.clone()]);
    assert_eq!(diff.added, vec![added.id.clone()]);
    assert_eq!(
        api.get(&format!("/api/v1/cameras/{}", mover.id)).await.1["agency"],
        "BUS"
    );
    assert_eq!(
        api.get(&format!("/api/v1/cameras/{}", renamed.id)).await.1["name"],
        "Renamed camera"
    );
    assert_eq!(
        api.get(&format!("/api/v1/cameras/{}", removed.id)).await.0,
        404
    );
    let (_, status) = api.get("/api/v1/vms/status").await;
    assert_eq!(
        status["last_changes"]["moved"][0],
        mover.id.as_str(),
        "{status}"
    );
    node.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xprotect_down_at_start_up_serves_the_stored_catalog_as_stale() {
    let sim = sim(10, 6).await;
    let data = tempdir("xprotect-stale");
    let (node, _) = node(&sim, Some(&data)).await;
    node.shutdown().await;
    // XProtect answers nothing useful now.
    sim.set_faults(Faults {
        server_error: true,
        ..Faults::default()
    });
    let mut cfg = node_config_with(&[], &milestone_yaml(&sim, "sim-password"));
    cfg.storage.data_dir = data.clone();
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    let (_, cams) = api.get("/api/v1/cameras").await;
    assert_eq!(cams["total"], 10, "the stored catalog is served: {cams}");
    let mut status = Value::Null;
    for _ in 0..100 {
        status = api.get("/api/v1/vms/status").await.1;
        if status["failures"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["stale"], true, "{status}");
    assert!(status["stale_age_seconds"].is_u64(), "{status}");
    assert!(
        status["error"].as_str().unwrap_or("").contains("500")
            || status["error"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains("unavailable"),
        "{status}"
    );
    assert_eq!(status["counts"]["cameras"], 10);
    // XProtect comes back: the next sync clears the stale mark.
    sim.set_faults(Faults::default());
    node.services
        .vms
        .clone()
        .unwrap()
        .sync_once()
        .await
        .expect("sync");
    assert_eq!(api.get("/api/v1/vms/status").await.1["stale"], false);
    node.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_sequences_come_from_the_recording_server() {
    let sim = sim(4, 4).await;
    let (node, api) = node(&sim, None).await;
    let cam = &sim.cameras()[0];
    let (s, t) = api.get(&format!("/api/v1/recordings/{}", cam.id)).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["source"], "xprotect");
    let tl = t["timeline"].as_array().unwrap();
    assert!(!tl.is_empty(), "{t}");
    for e in tl {
        assert!(e["duration_seconds"].as_f64().unwrap() > 0.0);
        assert!(e["start_time"].as_str().unwrap() < e["end_time"].as_str().unwrap());
    }
    for w in tl.windows(2) {
        assert!(
            w[0]["start_time"].as_str() <= w[1]["start_time"].as_str(),
            "sorted"
        );
    }
    assert!(
        !t["gaps"].as_array().unwrap().is_empty(),
        "the simulator records with gaps: {t}"
    );
    let (s, v) = api
        .get(&format!("/api/v1/recordings/{}?start=yesterday", cam.id))
        .await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("start")));
    node.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_reported_without_secrets() {
    let sim = sim(2, 4).await;
    let cfg = node_config_with(&[], &milestone_yaml(&sim, "not-the-password-42"));
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    let mut status = Value::Null;
    for _ in 0..100 {
        status = api.get("/api/v1/vms/status").await.1;
        if status["failures"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = status.to_string();
    assert!(
        text.contains("XProtect login failed: InvalidCredentials"),
        "{status}"
    );
    assert!(!text.contains("not-the-password-42"), "{status}");
    assert_eq!(status["counts"]["cameras"], 0);
    node.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_keep_the_previous_catalog() {
    let sim = sim(6, 4).await;
    let (node, api) = node(&sim, None).await;
    let vms = node.services.vms.clone().unwrap();
    sim.set_faults(Faults {
        malformed_json: true,
        ..Faults::default()
    });
    let e = vms
        .sync_once()
        .await
        .expect_err("malformed JSON fails the sync");
    let msg = e.to_string();
    assert!(
        [
            "cameras",
            "hardware",
            "recordingServers",
            "cameraGroups",
            "sites"
        ]
        .iter()
        .any(|r| msg.starts_with(&format!("{r}:"))),
        "the error names the resource: {msg}"
    );
    assert_eq!(
        api.get("/api/v1/cameras").await.1["total"],
        6,
        "previous catalog kept"
    );
    let (_, status) = api.get("/api/v1/vms/status").await;
    assert!(status["error"].is_string(), "{status}");
    node.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_camera_plays_through_whep() {
    let sim = sim(3, 4).await;
    let (node, api) = node(&sim, None).await;
    let cam = sim.cameras()[0].clone();
    let url = api.whep_url(&cam.id, "op").await;
    let mut c = webrtc::testing::WhepClient::connect(&url)
        .await
        .expect("whep");
    c.wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");
    let mut n = 0;
    while n < 25 {
        let f = tokio::time::timeout(Duration::from_secs(5), c.recv_frame())
            .await
            .expect("frames from the VMS camera")
            .expect("frame");
        if n == 0 {
            assert!(f.is_key);
        }
        n += 1;
    }
    assert_eq!(api.camera_status(&cam.id).await, "online");
    node.shutdown().await;
    sim.shutdown().await;
}

/// A connector straight on the simulator, with a short timeout for the hang case.
fn connector(sim: &Simulator, password: &str) -> vms::Connector {
    let mut c = vms::XProtectConfig::new(
        url::Url::parse(&sim.server_url()).unwrap(),
        "rta-integration",
        password,
    );
    c.request_timeout = Duration::from_millis(800);
    c.max_camera_lists_per_minute = 1000;
    c.max_recording_queries_per_minute = 1000;
    vms::Connector::new(c, std::sync::Arc::new(base::RealClocks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_in_every_fault_mode_of_the_simulator() {
    let sim = sim(20, 10).await;
    let c = connector(&sim, "sim-password");
    let clean = c.inventory().await.expect("clean inventory");
    assert_eq!(clean.cameras.len(), 20);
    assert_eq!(clean.groups.len(), 10);
    let with_recorder = clean
        .cameras
        .iter()
        .filter(|x| x.recorder_id.is_some())
        .count();
    assert_eq!(
        with_recorder, 20,
        "camera -> hardware -> recording server via relations.parent"
    );
    let set = |f: Faults| sim.set_faults(f);
    let kind = |r: Result<vms::Inventory, base::Error>| r.map(|_| ()).map_err(|e| e.kind());

    // Variants the connector must absorb: same inventory.
    for f in [
        Faults {
            numbers_as_strings: true,
            ..Faults::default()
        },
        Faults {
            groups_flat: true,
            ..Faults::default()
        },
        Faults {
            honour_paging: true,
            ..Faults::default()
        },
        Faults {
            slow: Some(Duration::from_millis(100)),
            ..Faults::default()
        },
    ] {
        set(f.clone());
        let inv = c.inventory().await.unwrap_or_else(|e| panic!("{f:?}: {e}"));
        assert_eq!(inv.cameras.len(), 20, "{f:?}");
        assert_eq!(inv.groups.len(), 10, "{f:?}: groups de-duplicated");
        let mut a: Vec<_> = inv
            .cameras
            .iter()
            .map(|x| (x.id.clone(), x.group_ids.len()))
            .collect();
        let mut b: Vec<_> = clean
            .cameras
            .iter()
            .map(|x| (x.id.clone(), x.group_ids.len()))
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{f:?}");
    }
    // Expired tokens: the connector logs in again and succeeds (the sim issues expired ones, so
    // each request needs a fresh login; one re-login per 401 is allowed, so it surfaces as an
    // authentication error rather than looping).
    set(Faults {
        expire_tokens_immediately: true,
        ..Faults::default()
    });
    let r = kind(c.inventory().await);
    assert!(
        matches!(r, Ok(()) | Err(base::ErrorKind::Unauthenticated)),
        "{r:?}"
    );
    // Failures the connector must report with the right kind.
    set(Faults {
        unauthorized: true,
        ..Faults::default()
    });
    assert_eq!(
        kind(c.inventory().await),
        Err(base::ErrorKind::Unauthenticated)
    );
    set(Faults {
        server_error: true,
        ..Faults::default()
    });
    assert_eq!(kind(c.inventory().await), Err(base::ErrorKind::Unavailable));
    set(Faults {
        malformed_json: true,
        ..Faults::default()
    });
    assert_eq!(kind(c.inventory().await), Err(base::ErrorKind::DataLoss));
    set(Faults {
        hang: true,
        ..Faults::default()
    });
    assert_eq!(
        kind(c.inventory().await),
        Err(base::ErrorKind::DeadlineExceeded)
    );
    set(Faults::default());
    let rec = clean.recorders[0].clone();
    let cam = &clean.cameras[0].id;
    let now = std::time::SystemTime::now();
    let day = Duration::from_secs(86_400);
    let seqs = c
        .sequences(cam, &rec, now - day, now, 100)
        .await
        .expect("sequences");
    assert!(!seqs.is_empty());
    set(Faults {
        malformed_xml: true,
        ..Faults::default()
    });
    let e = c
        .sequences(cam, &rec, now - day, now, 100)
        .await
        .expect_err("malformed XML");
    assert_eq!(e.kind(), base::ErrorKind::DataLoss, "{e}");
    // Wrong credentials, with the real error body.
    set(Faults::default());
    let bad = connector(&sim, "wrong-password-77");
    let e = bad.inventory().await.expect_err("wrong password");
    assert!(
        e.to_string()
            .contains("XProtect login failed: InvalidCredentials"),
        "{e}"
    );
    assert!(!format!("{e:?} {:?}", bad.status()).contains("wrong-password-77"));
    sim.shutdown().await;
}
