//! End-to-end tests of the simulator with a plain HTTP client and raw RTSP, against the shapes in
//! `shared/reference/milestone-xprotect.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sim::{Faults, SimConfig, Simulator};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn token(sim: &Simulator, c: &reqwest::Client) -> R<String> {
    let cfg = sim.config();
    let r = post_form(
        c,
        format!("{}/API/IDP/connect/token", sim.server_url()),
        &[
            ("grant_type", "password"),
            ("username", &cfg.username),
            ("password", &cfg.password),
            ("client_id", "GrantValidatorClient"),
        ],
    )
    .await?;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await?;
    Ok(v["access_token"].as_str().ok_or("no token")?.to_owned())
}

async fn get(sim: &Simulator, c: &reqwest::Client, tok: &str, path: &str) -> R<(u16, Value)> {
    let r = c
        .get(format!("{}/api/rest/v1/{path}", sim.server_url()))
        .bearer_auth(tok)
        .send()
        .await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// POSTs `pairs` as `application/x-www-form-urlencoded`, as OAuth clients do.
async fn post_form(
    c: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    pairs: &[(&str, &str)],
) -> reqwest::Result<reqwest::Response> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    c.post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(ks: &[&str]) -> BTreeSet<String> {
    ks.iter().map(|s| s.to_string()).collect()
}

const CAMERA_KEYS: &[&str] = &[
    "displayName",
    "enabled",
    "id",
    "name",
    "channel",
    "description",
    "createdDate",
    "lastModified",
    "gisPoint",
    "shortName",
    "icon",
    "coverageDirection",
    "coverageDepth",
    "coverageFieldOfView",
    "recordingFramerate",
    "recordKeyframesOnly",
    "recordOnRelatedDevices",
    "ptzEnabled",
    "recordingEnabled",
    "prebufferEnabled",
    "prebufferInMemory",
    "prebufferSeconds",
    "edgeStorageEnabled",
    "edgeStoragePlaybackEnabled",
    "manualRecordingTimeoutEnabled",
    "manualRecordingTimeoutMinutes",
    "recordingStorage",
    "failoverSetting",
    "relations",
];

fn is_7digit_ts(s: &str) -> bool {
    // 2025-10-27T15:03:52.8070000Z or ...-05:00
    s.len() >= 28 && s.as_bytes()[19] == b'.' && s[20..27].bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn discovery_and_tokens() -> R {
    let sim = Simulator::start(SimConfig::default()).await?;
    let c = client();
    let u: Value = c
        .get(format!("{}/api/.well-known/uris", sim.server_url()))
        .send()
        .await?
        .json()
        .await?;
    for k in [
        "ProductVersion",
        "UnsecureManagementServer",
        "SecureManagementServer",
        "IdentityProvider",
        "ApiGateways",
    ] {
        assert!(u.get(k).is_some(), "{k} missing in {u}");
    }
    let o: Value = c
        .get(format!(
            "{}/IDP/.well-known/openid-configuration",
            sim.server_url()
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(o["server_version"], "25.1");
    let te = o["token_endpoint"].as_str().unwrap();
    assert_eq!(te, format!("{}/IDP/connect/token", sim.server_url()));

    // Direct IDP endpoint from the OIDC document.
    let r = post_form(
        &c,
        te,
        &[
            ("grant_type", "password"),
            ("username", "rta-integration"),
            ("password", "sim-password"),
            ("client_id", "GrantValidatorClient"),
        ],
    )
    .await?;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await?;
    assert_eq!(
        keys(&v),
        set(&["access_token", "expires_in", "token_type", "scope"])
    );
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "managementserver");
    assert!(v["access_token"].as_str().unwrap().starts_with("eyJ"));

    // Wrong password.
    let r = post_form(
        &c,
        format!("{}/API/IDP/connect/token", sim.server_url()),
        &[
            ("grant_type", "password"),
            ("username", "rta-integration"),
            ("password", "nope"),
            ("client_id", "GrantValidatorClient"),
        ],
    )
    .await?;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await?;
    assert_eq!(v["error"], "invalid_grant");
    assert_eq!(v["error_code"], "InvalidCredentials");
    assert!(v["error_description"].is_string());

    // NTLM cannot go through the gateway.
    let r = post_form(
        &c,
        format!("{}/API/IDP/connect/token", sim.server_url()),
        &[
            ("grant_type", "windows_credentials"),
            ("client_id", "GrantValidatorClient"),
        ],
    )
    .await?;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await?;
    assert_eq!(v["error"], "unsupported_grant_type");

    // VmsClient gets a refresh token that works once.
    let v: Value = post_form(
        &c,
        te,
        &[
            ("grant_type", "password"),
            ("username", "rta-integration"),
            ("password", "sim-password"),
            ("client_id", "VmsClient"),
        ],
    )
    .await?
    .json()
    .await?;
    let rt = v["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", "VmsClient"),
    ];
    assert_eq!(post_form(&c, te, &form).await?.status(), 200);
    assert_eq!(post_form(&c, te, &form).await?.status(), 400);
    assert_eq!(sim.request_counts().get("token"), Some(&6));
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn resource_shapes() -> R {
    let sim = Simulator::start(SimConfig {
        cameras: 20,
        groups: 25,
        ..SimConfig::default()
    })
    .await?;
    let c = client();
    let tok = token(&sim, &c).await?;

    let (s, v) = get(&sim, &c, &tok, "cameras").await?;
    assert_eq!(s, 200);
    assert_eq!(keys(&v), set(&["array"]));
    let cams = v["array"].as_array().unwrap();
    assert_eq!(cams.len(), 20);
    for cam in cams {
        assert_eq!(keys(cam), set(CAMERA_KEYS), "{cam}");
        assert_eq!(cam["createdDate"], "0001-01-01T00:00:00.0000000");
        assert!(is_7digit_ts(cam["lastModified"].as_str().unwrap()), "{cam}");
        assert_eq!(cam["relations"]["parent"]["type"], "hardware");
        assert_eq!(cam["relations"]["self"]["type"], "cameras");
        assert_eq!(cam["relations"]["self"]["id"], cam["id"]);
        assert!(cam["recordingFramerate"].is_number());
        assert!(cam["gisPoint"].as_str().unwrap().starts_with("POINT"));
    }
    assert!(
        cams.iter()
            .any(|c| c["lastModified"].as_str().unwrap().ends_with("-05:00"))
    );

    // One item.
    let id = cams[0]["id"].as_str().unwrap();
    let (s, v) = get(&sim, &c, &tok, &format!("cameras/{id}")).await?;
    assert_eq!(s, 200);
    assert_eq!(keys(&v), set(&["data"]));
    assert_eq!(v["data"]["id"], id);
    // Case-insensitive paths.
    let (s, _) = get(&sim, &c, &tok, &format!("Cameras/{}", id.to_uppercase())).await?;
    assert_eq!(s, 200);

    // Hardware.
    let (_, v) = get(&sim, &c, &tok, "hardware").await?;
    let hws = v["array"].as_array().unwrap();
    assert!(hws.len() < 20, "some hardware has several channels");
    let hw_keys = set(&[
        "displayName",
        "enabled",
        "id",
        "name",
        "description",
        "address",
        "userName",
        "model",
        "passwordLastModified",
        "lastModified",
        "hardwareDriverPath",
        "relations",
    ]);
    let mut multi = false;
    for hw in hws {
        assert_eq!(keys(hw), hw_keys);
        let a = hw["address"].as_str().unwrap();
        assert!(a.starts_with("http://10.") && a.ends_with('/'), "{a}");
        assert_eq!(hw["relations"]["parent"]["type"], "recordingServers");
        let hid = hw["id"].as_str().unwrap();
        let (s, v) = get(&sim, &c, &tok, &format!("hardware/{hid}/cameras")).await?;
        assert_eq!(s, 200);
        let chans: Vec<u64> = v["array"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["channel"].as_u64().unwrap())
            .collect();
        assert!(!chans.is_empty());
        assert_eq!(chans, (0..chans.len() as u64).collect::<Vec<_>>());
        multi |= chans.len() > 1;
    }
    assert!(multi);

    // Recording servers point at the recorder listener.
    let (_, v) = get(&sim, &c, &tok, "recordingServers").await?;
    let recs = v["array"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    for r in recs {
        assert_eq!(
            keys(r),
            set(&[
                "displayName",
                "enabled",
                "id",
                "name",
                "description",
                "lastModified",
                "synchronizationTime",
                "timeZoneName",
                "hostName",
                "portNumber",
                "webServerUri",
                "activeWebServerUri",
                "publicAccessEnabled",
                "publicWebserverHostName",
                "publicWebserverPort",
                "multicastServerAddress",
                "shutdownOnStorageFailure",
                "relations",
            ])
        );
        assert_eq!(r["webServerUri"], sim.recorder_url());
        assert_eq!(r["relations"]["parent"]["type"], "sites");
        let rid = r["id"].as_str().unwrap();
        let (s, v) = get(&sim, &c, &tok, &format!("recordingServers/{rid}/storages")).await?;
        assert_eq!(s, 200);
        assert!(v["array"][0]["maxSize"].is_number());
    }

    // Sites.
    let (_, v) = get(&sim, &c, &tok, "sites").await?;
    let site = &v["array"][0];
    for k in [
        "displayName",
        "id",
        "name",
        "description",
        "lastModified",
        "timeZone",
        "computerName",
        "domainName",
        "lastStatusHandshake",
        "physicalMemory",
        "platform",
        "processors",
        "serviceAccount",
        "synchronizationStatus",
        "masterSiteAddress",
        "version",
        "relations",
    ] {
        assert!(site.get(k).is_some(), "{k}");
    }
    assert_eq!(site["version"], "25.1.1804.0");

    // Groups: top level only.
    let (_, v) = get(&sim, &c, &tok, "cameraGroups").await?;
    let tops = v["array"].as_array().unwrap();
    let names: Vec<&str> = tops.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Dubai Police", "Metro", "Bus", "Other"]);
    assert_eq!(
        keys(&tops[0]),
        set(&[
            "displayName",
            "id",
            "name",
            "description",
            "lastModified",
            "builtIn",
            "relations"
        ])
    );

    // Unknown resources (§4.1) and ids.
    for p in ["recordings", "sequences", "playback"] {
        let (s, v) = get(&sim, &c, &tok, p).await?;
        assert_eq!(s, 404);
        assert_eq!(
            v,
            serde_json::json!({"error":{"httpCode":404,"details":[{"errorText":format!("Unknown resource: {p}")}]}})
        );
    }
    let (s, v) = get(&sim, &c, &tok, &format!("cameras/{id}/recordings")).await?;
    assert_eq!(s, 404);
    assert_eq!(
        v["error"]["details"][0]["errorText"],
        "Unknown resource: recordings"
    );
    let (s, v) = get(
        &sim,
        &c,
        &tok,
        "cameras/00000000-0000-0000-0000-000000000000",
    )
    .await?;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["httpCode"], 404);
    let (s, _) = get(&sim, &c, &tok, "storages").await?;
    assert_eq!(s, 400);
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn disabled_flag_and_estate_changes() -> R {
    let sim = Simulator::start(SimConfig::default()).await?;
    let c = client();
    let tok = token(&sim, &c).await?;
    let cams = sim.cameras();
    assert_eq!(cams.len(), 8);
    assert!(sim.set_camera_enabled(&cams[2].id, false));
    let (_, v) = get(&sim, &c, &tok, "cameras").await?;
    assert_eq!(v["array"].as_array().unwrap().len(), 7);
    let (_, v) = get(&sim, &c, &tok, "cameras?disabled").await?;
    let all = v["array"].as_array().unwrap();
    assert_eq!(all.len(), 8);
    assert!(all.iter().any(|c| c["enabled"] == false));

    assert!(sim.rename_camera(&cams[0].id, "Renamed"));
    let added = sim.add_camera();
    assert_eq!(added.index, 9);
    assert!(sim.remove_camera(&cams[1].id));
    let (_, v) = get(&sim, &c, &tok, "cameras").await?;
    let names: Vec<&str> = v["array"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 7);
    assert_eq!(names[0], "Renamed");
    assert!(names.contains(&added.name.as_str()));
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn token_expiry_and_auth_faults() -> R {
    let sim = Simulator::start(SimConfig {
        token_ttl: Duration::from_millis(400),
        ..SimConfig::default()
    })
    .await?;
    let c = client();
    let tok = token(&sim, &c).await?;
    assert_eq!(get(&sim, &c, &tok, "cameras").await?.0, 200);
    // Missing and unknown tokens.
    let r = c
        .get(format!("{}/api/rest/v1/cameras", sim.server_url()))
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await?;
    assert_eq!(v["error"]["httpCode"], 401);
    let (s, _) = get(&sim, &c, "garbage", "cameras").await?;
    assert_eq!(s, 401);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, v) = get(&sim, &c, &tok, "cameras").await?;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["httpCode"], 401);

    let tok = token(&sim, &c).await?;
    sim.set_faults(Faults {
        unauthorized: true,
        ..Faults::default()
    });
    assert_eq!(get(&sim, &c, &tok, "cameras").await?.0, 401);
    sim.set_faults(Faults {
        server_error: true,
        ..Faults::default()
    });
    assert_eq!(get(&sim, &c, &tok, "cameras").await?.0, 500);
    sim.set_faults(Faults {
        expire_tokens_immediately: true,
        ..Faults::default()
    });
    let tok2 = token(&sim, &c).await?;
    assert_eq!(get(&sim, &c, &tok2, "cameras").await?.0, 401);
    sim.set_faults(Faults {
        malformed_json: true,
        ..Faults::default()
    });
    let tok3 = token(&sim, &c).await?;
    let r = c
        .get(format!("{}/api/rest/v1/cameras", sim.server_url()))
        .bearer_auth(&tok3)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await?).is_err());

    // hang: the client times out; slow: answers late.
    sim.set_faults(Faults {
        hang: true,
        ..Faults::default()
    });
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()?;
    let r = short
        .get(format!("{}/api/rest/v1/cameras", sim.server_url()))
        .bearer_auth(&tok3)
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    sim.set_faults(Faults {
        slow: Some(Duration::from_millis(500)),
        ..Faults::default()
    });
    let r = short
        .get(format!("{}/api/rest/v1/cameras", sim.server_url()))
        .bearer_auth(&tok3)
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    sim.set_faults(Faults::default());
    assert_eq!(sim.faults(), Faults::default());
    let counts = sim.request_counts();
    assert!(
        counts.get("rest:cameras").copied().unwrap_or(0) >= 10,
        "{counts:?}"
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn numbers_as_strings_and_paging() -> R {
    let sim = Simulator::start(SimConfig {
        cameras: 12,
        ..SimConfig::default()
    })
    .await?;
    let c = client();
    let tok = token(&sim, &c).await?;
    sim.set_faults(Faults {
        numbers_as_strings: true,
        ..Faults::default()
    });
    let (_, v) = get(&sim, &c, &tok, "cameras").await?;
    let cam = &v["array"][0];
    assert!(cam["recordingFramerate"].is_string());
    assert!(cam["coverageDirection"].is_string());
    assert!(cam["coverageDepth"].is_string());
    assert!(cam.get("failoverSetting").is_none());
    assert!(cam["channel"].is_number());

    // Paging ignored by default, honoured with the switch.
    sim.set_faults(Faults::default());
    let (_, v) = get(&sim, &c, &tok, "cameras?page=1&size=5").await?;
    assert_eq!(v["array"].as_array().unwrap().len(), 12);
    sim.set_faults(Faults {
        honour_paging: true,
        ..Faults::default()
    });
    let (_, v) = get(&sim, &c, &tok, "cameras?page=2&size=5").await?;
    assert_eq!(v["array"].as_array().unwrap().len(), 2);
    sim.shutdown().await;
    Ok(())
}

/// Walks the group tree breadth-first from `/cameraGroups`; returns (path, group id) pairs and
/// camera id → paths.
async fn walk_groups(
    sim: &Simulator,
    c: &reqwest::Client,
    tok: &str,
) -> R<(Vec<String>, std::collections::HashMap<String, Vec<String>>)> {
    let (_, v) = get(sim, c, tok, "cameraGroups").await?;
    let mut queue: VecDeque<(String, String)> = v["array"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut seen = HashSet::new();
    let mut paths = Vec::new();
    let mut membership: std::collections::HashMap<String, Vec<String>> = Default::default();
    while let Some((path, id)) = queue.pop_front() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let (_, v) = get(sim, c, tok, &format!("cameraGroups/{id}/cameras")).await?;
        for cam in v["array"].as_array().unwrap() {
            membership
                .entry(cam["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(path.clone());
        }
        let (_, v) = get(sim, c, tok, &format!("cameraGroups/{id}/cameraGroups")).await?;
        for g in v["array"].as_array().unwrap() {
            queue.push_back((
                format!("{path}/{}", g["name"].as_str().unwrap()),
                g["id"].as_str().unwrap().to_owned(),
            ));
        }
        paths.push(path);
    }
    Ok((paths, membership))
}

#[tokio::test]
async fn group_tree_and_move() -> R {
    let sim = Simulator::start(SimConfig {
        cameras: 30,
        groups: 25,
        ..SimConfig::default()
    })
    .await?;
    let c = client();
    let tok = token(&sim, &c).await?;
    let (paths, membership) = walk_groups(&sim, &c, &tok).await?;
    assert_eq!(paths.len(), 25);
    assert!(paths.iter().any(|p| p.split('/').count() >= 3));
    assert!(paths.contains(&"Metro/Red Line/Union".to_owned()));
    assert!(paths.contains(&"Dubai Police/Sheikh Zayed Rd".to_owned()));
    assert!(membership.values().any(|p| p.len() == 2));
    sim.set_faults(Faults {
        groups_flat: true,
        ..Faults::default()
    });
    let (_, v) = get(&sim, &c, &tok, "cameraGroups").await?;
    assert_eq!(v["array"].as_array().unwrap().len(), 25);
    sim.set_faults(Faults::default());
    // Every camera is in some group, and the API agrees with the simulator.
    for cam in sim.cameras() {
        let mut api = membership.get(&cam.id).cloned().unwrap_or_default();
        let mut mine = cam.group_paths.clone();
        api.sort();
        mine.sort();
        assert_eq!(api, mine, "{}", cam.name);
        assert!(!mine.is_empty());
    }
    let cam = &sim.cameras()[5];
    assert!(sim.move_camera(&cam.id, "Bus/Deira"));
    assert!(!sim.move_camera(&cam.id, "No/Such/Group"));
    let (_, membership) = walk_groups(&sim, &c, &tok).await?;
    assert_eq!(membership[&cam.id], vec!["Bus/Deira".to_owned()]);
    sim.shutdown().await;
    Ok(())
}

const LOGIN: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Login xmlns="http://videoos.net/2/XProtectCSServerCommand"><instanceId>3a1c4d2e-0000-4000-8000-000000000001</instanceId><currentToken /></Login></s:Body></s:Envelope>"#;

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let a = s.find(open)? + open.len();
    let b = s[a..].find(close)? + a;
    Some(&s[a..b])
}

#[tokio::test]
async fn soap_login_and_sequences() -> R {
    let sim = Simulator::start(SimConfig::default()).await?;
    let c = client();
    let tok = token(&sim, &c).await?;
    let scs_url = format!(
        "{}/ManagementServer/ServerCommandServiceOAuth.svc",
        sim.server_url()
    );
    // Without a bearer: 401.
    let r = c.post(&scs_url).body(LOGIN).send().await?;
    assert_eq!(r.status(), 401);
    let r = c
        .post(&scs_url)
        .bearer_auth(&tok)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header(
            "SOAPAction",
            "http://videoos.net/2/XProtectCSServerCommand/IServerCommandService/Login",
        )
        .body(LOGIN)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let x = r.text().await?;
    assert!(x.contains("<LoginResponse xmlns=\"http://videoos.net/2/XProtectCSServerCommand\">"));
    let result = between(&x, "<LoginResult>", "</LoginResult>").unwrap();
    assert!(result.contains("<RegistrationTime>"));
    assert_eq!(
        between(result, "<MicroSeconds>", "</MicroSeconds>"),
        Some("3600000000")
    );
    assert!(result.contains("<TimeToLiveLimited>false</TimeToLiveLimited>"));
    let scs = between(result, "<Token>", "</Token>").unwrap().to_owned();
    assert!(scs.starts_with("TOKEN#"));
    assert_eq!(sim.scs_token_count(), 1);

    let cam = sim.cameras()[0].id.clone();
    let rcs = format!(
        "{}RecorderCommandService/RecorderCommandService.asmx",
        sim.recorder_url()
    );
    let types_body = format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><SequencesGetTypes xmlns="http://videoos.net/2/XProtectCSRecorderCommand"><token>{scs}</token><deviceId>{cam}</deviceId></SequencesGetTypes></s:Body></s:Envelope>"#
    );
    let x = c.post(&rcs).body(types_body).send().await?.text().await?;
    assert!(
        x.contains("<Id>f9c62604-d0c5-4050-ae25-72de51639b14</Id>"),
        "{x}"
    );
    assert!(x.contains("<Name>MotionSequence</Name>"));

    let now = std::time::SystemTime::now();
    let fmt = |t: std::time::SystemTime| {
        let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        // Build an RFC 3339 UTC time without extra crates.
        let days = secs / 86400;
        let (y, m, d) = civil(days as i64);
        let r = secs % 86400;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            r / 3600,
            r / 60 % 60,
            r % 60
        )
    };
    let seq_body = |token: &str, max_count: u32| {
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><SequencesGet xmlns="http://videoos.net/2/XProtectCSRecorderCommand"><token>{token}</token><deviceId>{cam}</deviceId><sequenceType>f9c62604-d0c5-4050-ae25-72de51639b14</sequenceType><minTime>{}</minTime><maxTime>{}</maxTime><maxCount>{max_count}</maxCount></SequencesGet></s:Body></s:Envelope>"#,
            fmt(now - Duration::from_secs(2 * 86400)),
            fmt(now)
        )
    };
    // SOAPAction in the wrong namespace is ignored (dispatch on the body element).
    let r = c
        .post(&rcs)
        .header(
            "SOAPAction",
            "http://videoos.net/2/XProtectCSServiceRegistration/SequencesGet",
        )
        .body(seq_body(&scs, 1000))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let x = r.text().await?;
    let entries: Vec<&str> = x.split("<SequenceEntry>").skip(1).collect();
    assert!(entries.len() > 20, "{}", entries.len());
    let begins: Vec<&str> = entries
        .iter()
        .map(|e| between(e, "<TimeBegin>", "</TimeBegin>").unwrap())
        .collect();
    assert!(
        begins.windows(2).all(|w| w[0] < w[1]),
        "sorted by TimeBegin"
    );
    assert!(entries[0].contains("<TimeTrigged>"));
    assert!(entries[0].contains("<TimeEnd>"));
    assert!(begins.iter().all(|b| b.len() == 28 && b.ends_with('Z')));
    // Deterministic and maxCount honoured.
    let x2 = c
        .post(&rcs)
        .body(seq_body(&scs, 5))
        .send()
        .await?
        .text()
        .await?;
    let entries2: Vec<&str> = x2.split("<SequenceEntry>").skip(1).collect();
    assert_eq!(entries2.len(), 5);
    assert_eq!(
        between(entries2[0], "<TimeBegin>", "</TimeBegin>"),
        Some(begins[0])
    );

    // Bad token: SOAP fault.
    let r = c
        .post(&rcs)
        .body(seq_body("TOKEN#bogus#", 10))
        .send()
        .await?;
    assert_eq!(r.status(), 500);
    let x = r.text().await?;
    assert!(
        x.contains("<soap:Fault>") && x.contains("<faultstring>"),
        "{x}"
    );

    // malformed_xml.
    sim.set_faults(Faults {
        malformed_xml: true,
        ..Faults::default()
    });
    let x = c
        .post(&rcs)
        .body(seq_body(&scs, 5))
        .send()
        .await?
        .text()
        .await?;
    assert!(!x.contains("</soap:Envelope>"));
    let counts = sim.request_counts();
    assert_eq!(counts.get("soap:Login"), Some(&2));
    assert_eq!(counts.get("recorder:SequencesGet"), Some(&4));
    sim.shutdown().await;
    Ok(())
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

async fn rtsp_describe(base: &str, path: &str, auth: Option<&str>) -> R<String> {
    let addr = base.trim_start_matches("rtsp://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await?;
    let auth = auth
        .map(|a| format!("Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "DESCRIBE {base}{path} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n{auth}\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    // Read until the headers and (if any) the body are complete or the peer stops.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(h) = text.find("\r\n\r\n") {
            let len = text[..h]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if got.len() >= h + 4 + len {
                return Ok(text);
            }
        }
    }
    Ok(String::from_utf8_lossy(&got).to_string())
}

#[tokio::test]
async fn rtsp_mounts() -> R {
    let sim = Simulator::start(SimConfig {
        cameras: 4,
        h265_every: 3,
        ..SimConfig::default()
    })
    .await?;
    let base = sim.rtsp_base_url();
    let cams = sim.cameras();
    let r = rtsp_describe(&base, "/camera/1", None).await?;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    assert!(r.contains("H264/90000"));
    let r = rtsp_describe(&base, &format!("/live/{}", cams[0].id), None).await?;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    assert_eq!(cams[2].codec, sim::Codec::H265);
    let r = rtsp_describe(&base, "/camera/3", None).await?;
    assert!(r.contains("H265/90000"), "{r}");
    let r = rtsp_describe(&base, "/camera/99", None).await?;
    assert!(r.starts_with("RTSP/1.0 404"), "{r}");

    sim.set_rtsp_auth(true);
    let r = rtsp_describe(&base, "/camera/1", None).await?;
    assert!(r.starts_with("RTSP/1.0 401"), "{r}");
    // base64("rta-integration:sim-password")
    let r = rtsp_describe(
        &base,
        "/camera/1",
        Some("cnRhLWludGVncmF0aW9uOnNpbS1wYXNzd29yZA=="),
    )
    .await?;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    sim.set_rtsp_auth(false);

    // Removed and disabled cameras stop answering; added ones answer.
    assert!(sim.remove_camera(&cams[1].id));
    let r = rtsp_describe(&base, "/camera/2", None).await?;
    assert!(r.starts_with("RTSP/1.0 404"), "{r}");
    let added = sim.add_camera();
    let r = rtsp_describe(&base, &format!("/camera/{}", added.index), None).await?;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    assert!(sim.set_camera_enabled(&cams[0].id, false));
    let r = rtsp_describe(&base, "/camera/1", None).await?;
    assert!(r.starts_with("RTSP/1.0 404"), "{r}");
    sim.shutdown().await;
    Ok(())
}
