//! Logins over HTTP (issue 11 item 2, design 0009 "Sessions"): a local user logs in with a
//! password and gets an access token and a refresh token; `GET /api/v1/auth/me` says who the
//! bearer is; a refresh token works once (a replay ends the session and its access tokens);
//! logout ends the session at once; a service account's API key is a bearer credential too.
//! Failures are 401 and audited; no answer and no audit row holds a password or a token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, node_config};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn post(base: &str, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value, String) {
    let mut r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("user-agent", "access-test/1");
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    let r = r.json(&body).send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

async fn me(base: &str, bearer: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_me_refresh_once_logout_and_api_keys() {
    let cfg = node_config(&[], "5s");
    let db = cfg.storage.data_dir.join("vantage.db");
    let (amal, wall_key) = {
        let users = store::UserStore::open(&db).unwrap();
        let amal = users
            .create(
                store::NewUser {
                    username: "amal".into(),
                    password_hash: Some(auth::Passwords::new().hash(PASSWORD).unwrap()),
                    role: auth::Role::Operator,
                    agencies: auth::Agencies::from_list(["METRO"]),
                },
                1,
            )
            .unwrap();
        let wall = users
            .create(
                store::NewUser {
                    username: "wall-1".into(),
                    password_hash: None,
                    role: auth::Role::Service,
                    agencies: auth::Agencies::All,
                },
                1,
            )
            .unwrap();
        let key = auth::NewApiKey::generate();
        users
            .create_api_key(&wall.id, "video wall", &key, 1)
            .unwrap();
        (amal, key.token().to_owned())
    };
    let node = vantage::Node::start(cfg).await.expect("node");
    let base = Api::new(node.http_addr).base;
    let mut answers = String::new();

    // Wrong password, unknown user, no password: 401 / 400, nothing issued.
    for (user, pw) in [("amal", "wrong password!"), ("nobody", PASSWORD)] {
        let (s, v, text) = post(
            &base,
            "/api/v1/auth/login",
            None,
            json!({"username": user, "password": pw}),
        )
        .await;
        assert_eq!(s, 401, "{v}");
        assert!(v["access_token"].is_null());
        answers.push_str(&text);
    }
    let (s, v, _) = post(
        &base,
        "/api/v1/auth/login",
        None,
        json!({"username": "amal"}),
    )
    .await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("password")));

    // A login: tokens, and who the bearer is.
    let (s, v, text) = post(
        &base,
        "/api/v1/auth/login",
        None,
        json!({"username": "amal", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    answers.push_str(&text);
    assert_eq!(v["token_type"], "Bearer");
    assert!(
        (850..=900).contains(&v["expires_in"].as_u64().unwrap()),
        "{v}"
    );
    assert_eq!(v["user"]["user_id"], amal.id.as_str());
    let access1 = v["access_token"].as_str().unwrap().to_owned();
    let refresh1 = v["refresh_token"].as_str().unwrap().to_owned();
    let session = v["session_id"].as_str().unwrap().to_owned();
    let (s, who) = me(&base, &access1).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["username"], "amal");
    assert_eq!(who["role"], "operator");
    assert_eq!(who["agencies"], json!(["METRO"]));
    assert_eq!(who["session_id"], session.as_str());
    // No credential, a malformed one, a forged one: 401.
    let r = reqwest::get(format!("{base}/api/v1/auth/me"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for bad in ["nonsense", "vk_00_xx", &format!("{access1}x")] {
        assert_eq!(me(&base, bad).await.0, 401, "{bad}");
    }

    // A refresh gives new tokens and spends the old refresh token; presenting it again is a
    // replay: the session ends, and with it every token of it.
    let (s, v, text) = post(
        &base,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh1}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    answers.push_str(&text);
    assert_eq!(v["session_id"], session.as_str());
    let access2 = v["access_token"].as_str().unwrap().to_owned();
    let refresh2 = v["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh1);
    assert_eq!(me(&base, &access2).await.0, 200);
    let (s, _, _) = post(
        &base,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh1}),
    )
    .await;
    assert_eq!(s, 401, "a replayed refresh token");
    assert_eq!(me(&base, &access2).await.0, 401, "the session ended");
    assert_eq!(me(&base, &access1).await.0, 401);
    let (s, _, _) = post(
        &base,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh2}),
    )
    .await;
    assert_eq!(s, 401);

    // A new login, then logout: its access token stops working at once.
    let (_, v, text) = post(
        &base,
        "/api/v1/auth/login",
        None,
        json!({"username": "AMAL", "password": PASSWORD}),
    )
    .await;
    answers.push_str(&text);
    let access3 = v["access_token"].as_str().expect("logged in").to_owned();
    assert_eq!(me(&base, &access3).await.0, 200);
    let (s, _, _) = post(&base, "/api/v1/auth/logout", Some(&access3), json!({})).await;
    assert_eq!(s, 204);
    assert_eq!(me(&base, &access3).await.0, 401);
    let (s, _, _) = post(&base, "/api/v1/auth/logout", Some(&access3), json!({})).await;
    assert_eq!(s, 401);

    // A user disabled (here by another process, as `vantage user disable` does): its tokens stop
    // working on the next request, and its refresh token gives nothing.
    let (_, v, _) = post(
        &base,
        "/api/v1/auth/login",
        None,
        json!({"username": "amal", "password": PASSWORD}),
    )
    .await;
    let access4 = v["access_token"].as_str().expect("logged in").to_owned();
    let refresh4 = v["refresh_token"].as_str().unwrap().to_owned();
    store::UserStore::open(&db)
        .unwrap()
        .update(
            &amal.id,
            store::UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
            2,
        )
        .unwrap();
    assert_eq!(me(&base, &access4).await.0, 401);
    let (s, _, _) = post(
        &base,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh4}),
    )
    .await;
    assert_eq!(s, 401);

    // A service account's API key is a bearer credential (no session).
    let (s, who) = me(&base, &wall_key).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["username"], "wall-1");
    assert_eq!(who["role"], "service");
    assert!(who["session_id"].is_null());

    // Audited: each failure under the name given, the successes, refresh, replay, logout.
    let (_, log) = Api::new(node.http_addr)
        .get("/api/v1/audit?limit=100")
        .await;
    let rows = log["events"].as_array().expect("audit rows").clone();
    let count = |action: &str| rows.iter().filter(|r| r["action"] == action).count();
    assert_eq!(count("login_failure"), 2, "{log}");
    assert_eq!(count("login_success"), 3, "{log}");
    assert_eq!(count("token_refresh"), 1, "{log}");
    assert_eq!(count("logout"), 2, "replay and logout: {log}");
    assert!(
        rows.iter()
            .any(|r| r["action"] == "login_failure" && r["user_id"] == "nobody"),
        "{log}"
    );

    // The audit query: by action, a page at a time, by user; who, role and user agent recorded.
    let api = Api::new(node.http_addr);
    let (_, p1) = api.get("/api/v1/audit?action=login_failure&limit=1").await;
    assert_eq!(p1["events"].as_array().unwrap().len(), 1, "{p1}");
    let next = p1["next"]
        .as_str()
        .expect("a full page has a next")
        .to_owned();
    let (_, p2) = api
        .get(&format!(
            "/api/v1/audit?action=login_failure&limit=1&after={next}"
        ))
        .await;
    assert_eq!(p2["events"].as_array().unwrap().len(), 1, "{p2}");
    assert_ne!(p1["events"][0]["seq"], p2["events"][0]["seq"]);
    let (_, p3) = api
        .get(&format!(
            "/api/v1/audit?action=login_failure&limit=1&after={}",
            p2["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(p3["events"], json!([]), "{p3}");
    assert!(p3["next"].is_null());
    let (_, nobody) = api.get("/api/v1/audit?user=nobody").await;
    assert_eq!(nobody["events"].as_array().unwrap().len(), 1, "{nobody}");
    assert_eq!(nobody["events"][0]["user_agent"], "access-test/1");
    assert_eq!(nobody["events"][0]["source_ip"], "127.0.0.1");
    let (_, ok) = api
        .get(&format!(
            "/api/v1/audit?action=login_success&user={}",
            amal.id
        ))
        .await;
    assert_eq!(ok["events"][0]["role"], "operator", "{ok}");
    let (s, bad) = api.get("/api/v1/audit?action=sing").await;
    assert_eq!((s, bad["error"]["field"].as_str()), (400, Some("action")));
    let (s, bad) = api.get("/api/v1/audit?after=x").await;
    assert_eq!((s, bad["error"]["field"].as_str()), (400, Some("after")));

    // No password and no token in any answer but the one that hands it out, nor in the audit.
    let log_text = log.to_string();
    for secret in [PASSWORD, "wrong password!", &refresh1, &access1, &wall_key] {
        assert!(!log_text.contains(secret), "the audit log holds a secret");
    }
    assert!(!answers.contains(PASSWORD) && !answers.contains("wrong password!"));

    // Five failures lock the name (429, audited as a lockout) before any password is checked.
    for _ in 0..5 {
        let (s, _, _) = post(
            &base,
            "/api/v1/auth/login",
            None,
            json!({"username": "ghost", "password": "guess guess guess"}),
        )
        .await;
        assert_eq!(s, 401);
    }
    let (s, v, _) = post(
        &base,
        "/api/v1/auth/login",
        None,
        json!({"username": "ghost", "password": "guess guess guess"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("LOGIN_LOCKED")),
        "{v}"
    );
    let (_, locks) = api.get("/api/v1/audit?action=lockout").await;
    assert_eq!(locks["events"][0]["user_id"], "ghost", "{locks}");
    assert_eq!(locks["events"][0]["reason"], "user", "{locks}");
    node.shutdown().await;
}

/// The `iam` crate's test keys (`crates/iam/testdata`).
fn key(name: &str) -> Vec<u8> {
    std::fs::read(common::repo_root().join(format!("crates/iam/testdata/{name}.pem"))).unwrap()
}

/// A JWKS holding the test RSA keys `(kid, key file)`.
fn jwks(keys: &[(&str, &str)]) -> Vec<u8> {
    let keys = keys
        .iter()
        .map(|(kid, file)| {
            let enc = jsonwebtoken::EncodingKey::from_rsa_pem(&key(file)).unwrap();
            let mut j =
                jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, jsonwebtoken::Algorithm::RS256)
                    .unwrap();
            j.common.key_id = Some((*kid).to_owned());
            j
        })
        .collect();
    serde_json::to_vec(&jsonwebtoken::jwk::JwkSet { keys }).unwrap()
}

fn rs256(kid: &str, file: &str, claims: &Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    let k = jsonwebtoken::EncodingKey::from_rsa_pem(&key(file)).unwrap();
    jsonwebtoken::encode(&h, claims, &k).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_tokens_from_a_jwks_with_rotation_and_refusals() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The identity provider's JWKS endpoint: its document can be swapped (a key rotation), and
    // its fetches are counted.
    let doc = Arc::new(std::sync::Mutex::new(jwks(&[("a", "rsa_a")])));
    let fetches = Arc::new(AtomicUsize::new(0));
    let app = {
        let (doc, fetches) = (doc.clone(), fetches.clone());
        axum::Router::new().route(
            "/certs",
            axum::routing::get(move || {
                let (doc, fetches) = (doc.clone(), fetches.clone());
                async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    doc.lock().unwrap().clone()
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    const ISS: &str = "https://idp.rta.example/realms/cctv";
    let cfg = common::node_config_with(
        &[],
        &format!(
            "auth:\n  issuers:\n    - {{ issuer: \"{ISS}\", audience: vantage, \
             jwks_url: \"http://{idp}/certs\", leeway: 30s }}\n"
        ),
    );
    let node = vantage::Node::start(cfg).await.expect("node");
    let base = Api::new(node.http_addr).base;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISS, "aud": "vantage", "sub": "f81d4fae", "preferred_username": "k.saeed",
        "nbf": now - 5, "exp": now + 300,
        "permissions": ["camera:DUBAI_POLICE:export", "camera:METRO:view"]
    });

    // A token of the current key: who it is, and what its permissions grant.
    let (s, who) = me(&base, &rs256("a", "rsa_a", &claims)).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["username"], "k.saeed");
    assert_eq!(who["issuer"], ISS);
    assert_eq!(who["role"], "operator");
    assert_eq!(
        who["grants"],
        json!([
            {"role": "operator", "agencies": ["DUBAI_POLICE"]},
            {"role": "viewer", "agencies": ["METRO"]}
        ])
    );
    assert!(who["session_id"].is_null());

    // The provider rotates to key `b`: a token naming it makes the node fetch the JWKS again
    // and it is accepted; tokens of the retired key `a` no longer are.
    *doc.lock().unwrap() = jwks(&[("b", "rsa_b")]);
    let before = fetches.load(Ordering::SeqCst);
    let (s, who) = me(&base, &rs256("b", "rsa_b", &claims)).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(fetches.load(Ordering::SeqCst), before + 1, "one fetch");
    assert_eq!(me(&base, &rs256("a", "rsa_a", &claims)).await.0, 401);
    // Unknown keys again right after: refused without fetching again (rate limit).
    let after = fetches.load(Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(me(&base, &rs256("c", "rsa_a", &claims)).await.0, 401);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), after, "no fetch per token");

    // Refused: expired beyond the skew, not yet valid, another audience, another issuer, a
    // forged signature under the trusted kid, alg none.
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    for (what, c) in [
        ("expired", with("exp", json!(now - 60))),
        ("not yet valid", with("nbf", json!(now + 120))),
        ("another audience", with("aud", json!("another-app"))),
        ("another issuer", with("iss", json!("https://evil.example"))),
    ] {
        let (s, v) = me(&base, &rs256("b", "rsa_b", &c)).await;
        assert_eq!(s, 401, "{what}: {v}");
    }
    assert_eq!(
        me(&base, &rs256("b", "rsa_a", &claims)).await.0,
        401,
        "forged"
    );
    let payload = rs256("b", "rsa_b", &claims)
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let none = format!("eyJhbGciOiJub25lIiwia2lkIjoiYiJ9.{payload}.");
    assert_eq!(me(&base, &none).await.0, 401, "alg none");
    node.shutdown().await;
}

async fn call(
    method: reqwest::Method,
    base: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut r = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_administer_users_and_api_keys_and_disabling_ends_sessions() {
    use reqwest::Method;
    let cfg = node_config(&[], "5s");
    let db = cfg.storage.data_dir.join("vantage.db");
    let admin = store::UserStore::open(&db)
        .unwrap()
        .create(
            store::NewUser {
                username: "root-admin".into(),
                password_hash: Some(auth::Passwords::new().hash(PASSWORD).unwrap()),
                role: auth::Role::Admin,
                agencies: auth::Agencies::All,
            },
            1,
        )
        .unwrap();
    let node = vantage::Node::start(cfg).await.expect("node");
    let base = Api::new(node.http_addr).base;
    let login = |user: &'static str, pw: &'static str| {
        let base = base.clone();
        async move {
            let (s, v, _) = post(
                &base,
                "/api/v1/auth/login",
                None,
                json!({"username": user, "password": pw}),
            )
            .await;
            (s, v["access_token"].as_str().unwrap_or_default().to_owned())
        }
    };
    let (_, root) = login("root-admin", PASSWORD).await;

    // No credential: 401. An admin creates an operator of METRO.
    let omar = json!({"username": "omar", "password": "a long enough pass", "role": "operator",
                      "agencies": ["METRO"]});
    let (s, _, _) = call(
        Method::POST,
        &base,
        "/api/v1/users",
        None,
        Some(omar.clone()),
    )
    .await;
    assert_eq!(s, 401);
    let (s, v, text) = call(
        Method::POST,
        &base,
        "/api/v1/users",
        Some(&root),
        Some(omar),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["role"].as_str(), v["agencies"].clone()),
        (Some("operator"), json!(["METRO"]))
    );
    assert!(
        !text.contains("argon2") && !text.contains("a long enough pass"),
        "{text}"
    );
    let omar_id = v["user_id"].as_str().unwrap().to_owned();
    // The same name in another case, a weak password, an unknown role: refused.
    for (body, want) in [
        (
            json!({"username": "OMAR", "password": "a long enough pass", "role": "viewer", "agencies": ["*"]}),
            409,
        ),
        (
            json!({"username": "omar2", "password": "short", "role": "viewer", "agencies": ["*"]}),
            400,
        ),
        (
            json!({"username": "omar3", "password": "a long enough pass", "role": "god"}),
            400,
        ),
    ] {
        let (s, v, _) = call(
            Method::POST,
            &base,
            "/api/v1/users",
            Some(&root),
            Some(body),
        )
        .await;
        assert_eq!(s, want, "{v}");
    }
    // The operator logs in but may not administer users: 403.
    let (s, omar_token) = login("omar", "a long enough pass").await;
    assert_eq!(s, 200);
    let (s, _, _) = call(Method::GET, &base, "/api/v1/users", Some(&omar_token), None).await;
    assert_eq!(s, 403);
    let (s, list, _) = call(Method::GET, &base, "/api/v1/users", Some(&root), None).await;
    assert_eq!(s, 200);
    assert_eq!(list["users"].as_array().unwrap().len(), 2, "{list}");

    // Disabled by the admin: the operator's token stops working at once.
    let (s, v, _) = call(
        Method::PATCH,
        &base,
        &format!("/api/v1/users/{omar_id}"),
        Some(&root),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!((s, v["disabled"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(me(&base, &omar_token).await.0, 401);
    assert_eq!(login("omar", "a long enough pass").await.0, 401);
    // An admin cannot disable itself.
    let (s, _, _) = call(
        Method::PATCH,
        &base,
        &format!("/api/v1/users/{}", admin.id),
        Some(&root),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(s, 409);

    // A service account and its API key, shown once, listed without it, revoked.
    let (s, wall, _) = call(
        Method::POST,
        &base,
        "/api/v1/users",
        Some(&root),
        Some(json!({"username": "wall-2", "role": "service", "agencies": ["*"]})),
    )
    .await;
    assert_eq!(s, 201, "{wall}");
    let keys = format!(
        "/api/v1/users/{}/api-keys",
        wall["user_id"].as_str().unwrap()
    );
    let (s, k, _) = call(
        Method::POST,
        &base,
        &keys,
        Some(&root),
        Some(json!({"name": "wall"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = k["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("vk_"));
    assert_eq!(me(&base, &key).await.0, 200);
    let (_, listed, text) = call(Method::GET, &base, &keys, Some(&root), None).await;
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 1);
    assert!(!text.contains(&key));
    let (s, _, _) = call(
        Method::DELETE,
        &base,
        &format!("{keys}/{}", k["key_id"].as_str().unwrap()),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(me(&base, &key).await.0, 401);

    // Deleted: gone.
    let path = format!("/api/v1/users/{omar_id}");
    assert_eq!(
        call(Method::DELETE, &base, &path, Some(&root), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(Method::GET, &base, &path, Some(&root), None).await.0,
        404
    );

    // Each change audited with the admin as the actor.
    let (_, log) = Api::new(node.http_addr)
        .get(&format!("/api/v1/audit?user={}", admin.id))
        .await;
    let actions: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "user_create",
        "user_update",
        "user_delete",
        "api_key_create",
        "api_key_revoke",
    ] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
    assert!(!log.to_string().contains(&key));
    node.shutdown().await;
}
