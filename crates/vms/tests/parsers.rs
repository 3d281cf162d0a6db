//! Parsers against fixtures copied from the reference document (see fixtures/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use base::ErrorKind;
use vms::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn ts(s: &str) -> SystemTime {
    parse_timestamp(s).unwrap().unwrap()
}

#[test]
fn cameras_25_1() {
    let c = parse_cameras(&fixture("xprotect_25.1_cameras.json")).unwrap();
    assert_eq!(c.len(), 1);
    let c = &c[0];
    assert_eq!(c.id, "a8a8b9dc-3995-49ed-9b00-62caac2ce74a");
    assert_eq!(c.name, "GUANGZHOU T18156-AF (192.168.1.13) - Camera 1");
    assert_eq!(c.display_name, c.name);
    assert_eq!(c.short_name, None);
    assert!(c.enabled && c.ptz_enabled && c.recording_enabled);
    assert_eq!(c.channel, 0);
    assert_eq!(c.recording_framerate, Some(5.0));
    assert_eq!(
        c.hardware_id.as_deref(),
        Some("5a94379d-468c-40ee-9c16-8d98be28e1dd")
    );
    assert_eq!(c.recorder_id, None);
    assert_eq!(c.last_modified, Some(ts("2025-10-27T15:03:52.807Z")));
    assert_eq!(c.gis_point, None);
}

#[test]
fn cameras_2023_numbers_as_strings() {
    let c = parse_cameras(&fixture("xprotect_2023_cameras_numbers_as_strings.json")).unwrap();
    let c = &c[0];
    assert_eq!(c.channel, 0);
    assert_eq!(c.recording_framerate, Some(5.0));
    assert_eq!(c.short_name.as_deref(), Some("iPad1"));
    assert!(!c.ptz_enabled);
    assert_eq!(c.gis_point, Some((-96.16593, 41.27878)));
    // -05:00 offset.
    assert_eq!(c.last_modified, Some(ts("2023-09-07T17:54:41.433Z")));
    assert_eq!(
        c.hardware_id.as_deref(),
        Some("08cf6a24-c7ab-4b50-80e0-5a56cf624c5f")
    );
}

#[test]
fn hardware_recorders_groups_2023() {
    let h = parse_hardware(&fixture("xprotect_2023_hardware.json")).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].name, "iPadCam01");
    assert_eq!(h[0].address.as_deref(), Some("http://192.168.1.154:8554/"));
    assert_eq!(h[0].model.as_deref(), Some("Universal1ChAdv"));
    assert_eq!(
        h[0].recorder_id.as_deref(),
        Some("19f94d50-b5ad-4e90-8b3f-9928bb60f9f2")
    );

    let r = parse_recording_servers(&fixture("xprotect_2023_recording_servers.json")).unwrap();
    assert_eq!(r[0].id, "19f94d50-b5ad-4e90-8b3f-9928bb60f9f2");
    assert_eq!(r[0].name, "WIN10VM");
    assert_eq!(r[0].host_name.as_deref(), Some("win10vm"));
    assert_eq!(r[0].port, Some(7563));
    assert_eq!(
        r[0].web_server_uri.as_ref().unwrap().as_str(),
        "http://win10vm:7563/"
    );

    let g = parse_camera_groups(&fixture("xprotect_2023_camera_groups.json")).unwrap();
    assert_eq!(g[0].id, "0275869c-808f-4387-8431-c210799e7f61");
    assert_eq!(g[0].name, "iPad Cameras");
    assert_eq!(g[0].path, "iPad Cameras");
}

#[test]
fn recorder_without_web_server_uri_uses_host_and_port() {
    let r = parse_recording_servers(
        br#"{"data":{"id":"r","name":"R","hostName":"rec1","portNumber":"7563","webServerUri":""}}"#,
    )
    .unwrap();
    assert_eq!(
        r[0].web_server_uri.as_ref().unwrap().as_str(),
        "http://rec1:7563/"
    );
}

#[test]
fn token_and_errors() {
    let t = parse_token_response(&fixture("xprotect_25.1_token.json")).unwrap();
    assert_eq!(t.expires_in, Duration::from_secs(3600));
    assert_eq!(t.token_type, "Bearer");
    let e = parse_rest_error(&fixture("xprotect_25.1_error_unknown_resource.json")).unwrap();
    assert_eq!(e.http_code, Some(404));
    assert_eq!(e.text, "Unknown resource: recordings");
    // A list endpoint answering with the error shape.
    let e = parse_cameras(&fixture("xprotect_25.1_error_unknown_resource.json")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn malformed_json_names_the_resource() {
    let e = parse_cameras(b"{\"array\" 1}").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataLoss);
    assert_eq!(e.message(), "cameras: expected `:` at line 1 column 10");
    let e = parse_cameras(b"[1, ").unwrap_err();
    assert!(e.message().starts_with("cameras: "), "{e}");
    let e = parse_hardware(b"{\"array\":7}").unwrap_err();
    assert_eq!(e.message(), "hardware: \"array\" is not a list");
    // Unknown fields and odd items are fine; items without id are skipped.
    let c =
        parse_cameras(br#"{"array":[{"name":"x"},{"id":"a","weird":{"deep":[1,2]}},7]}"#).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, "a");
}

#[test]
fn scs_login_result() {
    let x = String::from_utf8(fixture("xprotect_scs_login_response_constructed.xml")).unwrap();
    let l = parse_login_result(&x).unwrap();
    assert_eq!(
        l.token.expose(),
        "TOKEN#7c3e1a2b-5d4f-4e6a-9b8c-0d1e2f3a4b5c#win10vm//ServerConnector#"
    );
    assert_eq!(l.time_to_live, Duration::from_secs(4 * 3600));
    assert_eq!(l.registration_time, Some(ts("2023-07-20T18:52:49.053Z")));
    assert_eq!(l.time_to_live_limited, Some(false));
    assert!(!format!("{l:?}").contains("TOKEN#"));
    assert_eq!(
        parse_login_result("<a/>").unwrap_err().message(),
        "Login: no LoginResult in the answer"
    );
}

#[test]
fn sequences_get() {
    let x = String::from_utf8(fixture("xprotect_sequences_get_response_constructed.xml")).unwrap();
    let s = parse_sequences(&x).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].begin, ts("2023-07-20T18:52:49.053Z"));
    assert_eq!(s[0].triggered, Some(ts("2023-07-20T18:52:49.053Z")));
    assert_eq!(s[0].end, ts("2023-07-20T18:53:01.029Z"));
    assert_eq!(s[1].triggered, None);
    assert_eq!(s[1].end, ts("2023-07-20T19:05:00.5Z"));

    // The verbatim entry inside a prefixed result.
    let entry = String::from_utf8(fixture("xprotect_sequences_get_entry.xml")).unwrap();
    let x = format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><r:SequencesGetResponse xmlns:r=\"http://videoos.net/2/XProtectCSRecorderCommand\"><r:SequencesGetResult>{}</r:SequencesGetResult></r:SequencesGetResponse></soap:Body></soap:Envelope>",
        entry.trim()
    );
    assert_eq!(parse_sequences(&x).unwrap().len(), 1);
    // Empty results.
    assert!(parse_sequences("<Envelope><Body><SequencesGetResponse><SequencesGetResult/></SequencesGetResponse></Body></Envelope>").unwrap().is_empty());
    assert!(
        parse_sequences("<Envelope><Body><SequencesGetResponse/></Body></Envelope>")
            .unwrap()
            .is_empty()
    );
    // Bad.
    let e = parse_sequences("<SequencesGetResult><SequenceEntry><TimeBegin>yesterday</TimeBegin></SequenceEntry></SequencesGetResult>").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataLoss);
    assert!(
        e.message().starts_with("SequencesGet: bad timestamp"),
        "{e}"
    );
    let e = parse_sequences("<SequencesGetResult><SequenceEntry><TimeBegin>2023-07-20T18:52:49Z</TimeBegin></SequenceEntry></SequencesGetResult>").unwrap_err();
    assert_eq!(e.message(), "SequencesGet: SequenceEntry without TimeEnd");
    let e = parse_sequences("not xml <").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataLoss);
}

/// A cheap stand-in for the fuzz targets under `cargo test`: every prefix of every fixture and
/// pseudo-random byte mutations of them go through every parser without panicking.
#[test]
fn parsers_survive_truncation_and_mutation() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let all = |d: &[u8]| {
        let _ = parse_cameras(d);
        let _ = parse_hardware(d);
        let _ = parse_recording_servers(d);
        let _ = parse_camera_groups(d);
        let _ = parse_rest_error(d);
        let _ = parse_token_response(d);
        let _ = parse_well_known_uris(d);
        let _ = parse_openid_configuration(d);
        let s = String::from_utf8_lossy(d);
        let _ = parse_login_result(&s);
        let _ = parse_sequences(&s);
        let _ = parse_timestamp(&s);
        let _ = parse_gis_point(&s);
    };
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for n in 0..data.len() {
            all(&data[..n]);
        }
        const BYTES: &[u8] = b"<>/\"'{}[],:&;#0-9.Z+- \x00\xff";
        for _ in 0..2000 {
            let mut d = data.clone();
            for _ in 0..(1 + rnd() % 4) {
                let i = (rnd() as usize) % d.len().max(1);
                let b = BYTES[(rnd() as usize) % BYTES.len()];
                match rnd() % 3 {
                    0 if !d.is_empty() => d[i] = b,
                    1 => d.insert(i.min(d.len()), b),
                    _ if !d.is_empty() => {
                        d.remove(i);
                    }
                    _ => {}
                }
            }
            all(&d);
        }
    }
    for ts in [
        "2023-07-20T18:52:49.0530000Z",
        "0001-01-01T00:00:00.0000000",
        "2023-09-07T12:54:41.4330000-05:00",
    ] {
        for n in 0..ts.len() {
            let _ = parse_timestamp(&ts[..n]);
        }
    }
}
