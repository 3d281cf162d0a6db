//! The connector against the independently written XProtect simulator (crate `sim`): both were
//! written from the same reference, so agreement here cross-checks the two readings of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base::ErrorKind;
use sim::{Faults, SimConfig, Simulator};
use vms::{Connector, XProtectConfig};

async fn setup(cfg: SimConfig) -> (Simulator, Connector) {
    let sim = Simulator::start(cfg).await.unwrap();
    let c = sim.config();
    let mut x = XProtectConfig::new(
        url::Url::parse(&sim.server_url()).unwrap(),
        c.username.clone(),
        c.password.clone(),
    );
    x.max_camera_lists_per_minute = 0;
    let conn = Connector::new(x, Arc::new(base::RealClocks));
    (sim, conn)
}

fn check_inventory(sim: &Simulator, inv: &vms::Inventory) {
    let mut want: Vec<String> = sim.cameras().iter().map(|c| c.id.to_lowercase()).collect();
    let mut got: Vec<String> = inv.cameras.iter().map(|c| c.id.to_lowercase()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let mut want_paths = sim.group_paths();
    let mut got_paths: Vec<String> = inv.groups.iter().map(|g| g.path.clone()).collect();
    want_paths.sort();
    got_paths.sort();
    assert_eq!(got_paths, want_paths);
    for sc in sim.cameras() {
        let c = inv
            .cameras
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(&sc.id))
            .unwrap();
        assert_eq!(c.enabled, sc.enabled, "{}", sc.id);
        assert_eq!(c.hardware_id.as_deref(), Some(sc.hardware_id.as_str()));
        assert!(c.recorder_id.is_some(), "{}", sc.id);
        let mut want: Vec<&str> = sc.group_paths.iter().map(String::as_str).collect();
        let mut got: Vec<&str> = c
            .group_ids
            .iter()
            .map(|g| {
                inv.groups
                    .iter()
                    .find(|x| &x.id == g)
                    .unwrap()
                    .path
                    .as_str()
            })
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "groups of {}", sc.id);
    }
}

#[tokio::test]
async fn inventory_and_sequences_against_sim() {
    let (sim, c) = setup(SimConfig {
        cameras: 12,
        groups: 9,
        ..Default::default()
    })
    .await;
    let d = c.discover().await.unwrap();
    assert_eq!(d.product_version.as_deref(), Some(sim::PRODUCT_VERSION));
    let inv = c.inventory().await.unwrap();
    check_inventory(&sim, &inv);

    // Both readings of `GET /cameraGroups` (§2.5 [?]) give the same tree.
    sim.set_faults(Faults {
        groups_flat: true,
        numbers_as_strings: true,
        ..Default::default()
    });
    let inv2 = c.inventory().await.unwrap();
    check_inventory(&sim, &inv2);
    assert_eq!(
        inv.cameras
            .iter()
            .map(|c| c.recording_framerate)
            .collect::<Vec<_>>(),
        inv2.cameras
            .iter()
            .map(|c| c.recording_framerate)
            .collect::<Vec<_>>()
    );
    sim.set_faults(Faults::default());

    let rec = &inv.recorders[0];
    let cam = &inv.cameras[0];
    let now = SystemTime::now();
    let seqs = c
        .sequences(&cam.id, rec, now - Duration::from_secs(86_400), now, 100)
        .await
        .unwrap();
    // 24 hours hold some recordings (the sim leaves about one hour in five empty).
    assert!(!seqs.is_empty());
    for w in seqs.windows(2) {
        assert!(w[0].begin <= w[1].begin, "sorted by begin");
    }
    for s in &seqs {
        assert!(s.begin <= s.end);
    }
    assert!(c.status().scs_token_expires_at.is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn failures_against_sim() {
    let (sim, c) = setup(SimConfig::default()).await;
    sim.set_faults(Faults {
        malformed_json: true,
        ..Default::default()
    });
    let e = c.inventory().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataLoss, "{e}");
    sim.set_faults(Faults {
        server_error: true,
        ..Default::default()
    });
    assert_eq!(
        c.inventory().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    sim.set_faults(Faults {
        unauthorized: true,
        ..Default::default()
    });
    assert_eq!(
        c.inventory().await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
    sim.set_faults(Faults::default());
    c.inventory().await.unwrap();

    // Wrong password.
    let mut x = XProtectConfig::new(
        url::Url::parse(&sim.server_url()).unwrap(),
        sim.config().username.clone(),
        "not-the-password",
    );
    x.max_camera_lists_per_minute = 0;
    let bad = Connector::new(x, Arc::new(base::RealClocks));
    let e = bad.inventory().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(
        e.message()
            .starts_with("XProtect login failed: InvalidCredentials"),
        "{e}"
    );
    assert!(!e.message().contains("not-the-password"));
    sim.shutdown().await;
}
