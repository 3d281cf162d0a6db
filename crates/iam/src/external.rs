//! Tokens from the authority's identity providers: RS256 or ES256 JWTs, verified against the
//! issuer's JWKS (handed in by the node, which fetches it) or a configured PEM key, with `iss`,
//! `aud`, `exp` and `nbf` checked on the caller's clock, and their claims mapped to grants.

use crate::{Grant, Identity, ROLES, Scope, TokenError, check_times, jwt_error, normalize};
use base::Error;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use serde_json::Value;
use std::collections::HashMap;

/// Where an issuer's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS document at this URL (fetched by the node, [`ExternalIssuer::set_jwks`]).
    JwksUrl(String),
    /// One public key (SPKI PEM, RSA or P-256); tokens need no `kid`.
    Pem(String),
}

/// Which claims hold what (names as the identity provider issues them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimMap {
    /// A display name (default `preferred_username`; `sub` when absent).
    pub username: String,
    /// A role name, one of [`ROLES`] (default `role`).
    pub role: String,
    /// The agency (a string or an array; `*` = all) the role applies to (default `agency`).
    pub agency: String,
    /// Permissions `camera:<AGENCY>:<verb>` (an array, or a space-separated string; default
    /// `permissions`): `view` → viewer, `playback`/`export` → operator, `lock`/`audit` →
    /// supervisor, `admin` → admin, for that agency (`*` = all); the highest per agency wins.
    pub permissions: String,
}

impl Default for ClaimMap {
    fn default() -> Self {
        ClaimMap {
            username: "preferred_username".into(),
            role: "role".into(),
            agency: "agency".into(),
            permissions: "permissions".into(),
        }
    }
}

/// One trusted identity provider.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// `iss`, exactly.
    pub issuer: String,
    /// Accepted `aud` values (a token must name one).
    pub audiences: Vec<String>,
    pub keys: KeySource,
    /// Accepted algorithms, a subset of RS256 and ES256.
    pub algorithms: Vec<Algorithm>,
    /// Allowed clock skew, seconds.
    pub leeway: u64,
    pub claims: ClaimMap,
}

struct Key {
    key: DecodingKey,
    /// The algorithms this key may verify (its family's, within the configured set).
    algorithms: Vec<Algorithm>,
}

/// A trusted identity provider and its current keys.
pub struct ExternalIssuer {
    cfg: IssuerConfig,
    /// By `kid` (`""` for a PEM key).
    keys: RwLock<HashMap<String, Key>>,
}

impl std::fmt::Debug for ExternalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalIssuer")
            .field("issuer", &self.cfg.issuer)
            .field("keys", &self.keys.read().len())
            .finish()
    }
}

fn family(alg: Algorithm) -> Option<&'static str> {
    match alg {
        Algorithm::RS256 => Some("RSA"),
        Algorithm::ES256 => Some("EC"),
        _ => None,
    }
}

impl ExternalIssuer {
    /// Fails on an algorithm other than RS256/ES256 or a PEM key that is neither RSA nor EC.
    pub fn new(cfg: IssuerConfig) -> Result<Self, Error> {
        if cfg.algorithms.is_empty() || cfg.algorithms.iter().any(|a| family(*a).is_none()) {
            base::bail!(
                InvalidArgument,
                "issuer `{}`: algorithms must be RS256 and/or ES256",
                cfg.issuer
            );
        }
        let me = ExternalIssuer {
            cfg,
            keys: RwLock::new(HashMap::new()),
        };
        if let KeySource::Pem(pem) = &me.cfg.keys {
            let key = me.pem_key(pem.as_bytes())?;
            me.keys.write().insert(String::new(), key);
        }
        Ok(me)
    }

    /// The configured algorithms of a key family (`RSA`, `EC`).
    fn allowed(&self, fam: &'static str) -> impl Iterator<Item = Algorithm> + '_ {
        self.cfg
            .algorithms
            .iter()
            .copied()
            .filter(move |a| family(*a) == Some(fam))
    }

    fn pem_key(&self, pem: &[u8]) -> Result<Key, Error> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Key {
                key,
                algorithms: self.allowed("RSA").collect(),
            });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            return Ok(Key {
                key,
                algorithms: self.allowed("EC").collect(),
            });
        }
        base::bail!(
            InvalidArgument,
            "issuer `{}`: the public key is neither an RSA nor a P-256 SPKI PEM",
            self.cfg.issuer
        )
    }

    pub fn issuer(&self) -> &str {
        &self.cfg.issuer
    }

    /// The JWKS URL to fetch, if the keys come from one.
    pub fn jwks_url(&self) -> Option<&str> {
        match &self.cfg.keys {
            KeySource::JwksUrl(u) => Some(u),
            KeySource::Pem(_) => None,
        }
    }

    /// Replaces the key set with a JWKS document's RSA and P-256 signing keys (a rotation drops
    /// the keys no longer listed); returns how many were taken. Keys without a `kid`, of another
    /// type, or meant for encryption are left out.
    pub fn set_jwks(&self, doc: &[u8]) -> Result<usize, Error> {
        let set: JwkSet = serde_json::from_slice(doc).map_err(|e| {
            base::err!(
                DataLoss,
                "issuer `{}`: the JWKS is not a key set: {e}",
                self.cfg.issuer
            )
        })?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            ) {
                continue;
            }
            let fam = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => "RSA",
                AlgorithmParameters::EllipticCurve(p)
                    if p.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
                {
                    "EC"
                }
                _ => continue,
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let algorithms = self
                .allowed(fam)
                .filter(|a| {
                    jwk.common
                        .key_algorithm
                        .is_none_or(|k| k.to_string() == format!("{a:?}"))
                })
                .collect::<Vec<_>>();
            if !algorithms.is_empty() {
                keys.insert(kid, Key { key, algorithms });
            }
        }
        let n = keys.len();
        *self.keys.write() = keys;
        Ok(n)
    }

    /// The ids of the keys held now.
    pub fn key_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.keys.read().keys().cloned().collect();
        v.sort();
        v
    }

    /// Verifies `token` at `now` (Unix seconds). [`TokenError::UnknownKey`] when its `kid` is
    /// not held: the caller may fetch the JWKS again and retry once.
    pub fn verify(&self, token: &str, now: u64) -> Result<Identity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !self.cfg.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let keys = self.keys.read();
        let kid = match (&self.cfg.keys, &header.kid) {
            (KeySource::Pem(_), _) => String::new(),
            (KeySource::JwksUrl(_), Some(k)) => k.clone(),
            (KeySource::JwksUrl(_), None) => {
                return Err(TokenError::Claims("the header has no `kid`".into()));
            }
        };
        let Some(key) = keys.get(&kid) else {
            return Err(TokenError::UnknownKey(kid));
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let mut v = Validation::new(header.alg);
        v.algorithms = key.algorithms.clone();
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["aud", "iss", "exp"].map(str::to_owned).into();
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&self.cfg.audiences);
        let data = jsonwebtoken::decode::<Value>(token, &key.key, &v).map_err(|e| {
            // An audience check with no `aud` at all reads as a missing claim.
            match jwt_error(&e) {
                TokenError::Claims(c) if c.contains("`aud`") => TokenError::Audience,
                other => other,
            }
        })?;
        drop(keys);
        self.identity(&data.claims, now)
    }

    fn identity(&self, c: &Value, now: u64) -> Result<Identity, TokenError> {
        let num = |k: &str| c.get(k).and_then(Value::as_u64);
        let exp = num("exp").ok_or_else(|| TokenError::Claims("`exp` is missing".into()))?;
        check_times(exp, num("nbf"), now, self.cfg.leeway)?;
        let subject = c
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TokenError::Claims("`sub` is missing".into()))?
            .to_owned();
        let m = &self.cfg.claims;
        let username = c
            .get(&m.username)
            .and_then(Value::as_str)
            .unwrap_or(&subject)
            .to_owned();
        Ok(Identity {
            issuer: self.cfg.issuer.clone(),
            username,
            grants: normalize(grants(c, m)),
            subject,
            session_id: None,
            expires_at: exp,
        })
    }
}

/// A claim as a list of strings: an array of strings, or one string split on spaces (OAuth's
/// `scope` style).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn rank(role: &str) -> usize {
    ["viewer", "operator", "supervisor", "admin"]
        .iter()
        .position(|r| *r == role)
        .map_or(0, |i| i + 1)
}

/// The grants a token's claims make: its role over its agencies, and each agency's highest
/// permission. Unknown role names and verbs grant nothing.
fn grants(c: &Value, m: &ClaimMap) -> Vec<Grant> {
    let mut out = Vec::new();
    if let Some(role) = c.get(&m.role).and_then(Value::as_str)
        && ROLES.contains(&role)
    {
        let agencies = strings(c.get(&m.agency));
        if role == "admin" {
            out.push(Grant {
                role: role.to_owned(),
                scope: Scope::All,
            });
        }
        for a in agencies {
            out.push(Grant {
                role: role.to_owned(),
                scope: Scope::parse(&a),
            });
        }
    }
    let mut best: HashMap<String, &'static str> = HashMap::new();
    for p in strings(c.get(&m.permissions)) {
        let mut parts = p.splitn(3, ':');
        let (Some("camera"), Some(agency), Some(verb)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let role = match verb {
            "view" => "viewer",
            "playback" | "export" => "operator",
            "lock" | "audit" => "supervisor",
            "admin" => "admin",
            _ => continue,
        };
        if agency.is_empty() {
            continue;
        }
        let e = best.entry(agency.to_owned()).or_insert(role);
        if rank(role) > rank(e) {
            *e = role;
        }
    }
    for (agency, role) in best {
        out.push(Grant {
            role: role.to_owned(),
            scope: Scope::parse(&agency),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verifier;
    use crate::testkeys::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const ISS: &str = "https://idp.rta.example/realms/cctv";

    fn cfg(keys: KeySource) -> IssuerConfig {
        IssuerConfig {
            issuer: ISS.into(),
            audiences: vec!["vantage".into()],
            keys,
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway: 60,
            claims: ClaimMap::default(),
        }
    }

    fn claims(now: u64) -> Value {
        json!({
            "iss": ISS, "aud": "vantage", "sub": "f81d4fae", "preferred_username": "k.saeed",
            "iat": now, "nbf": now, "exp": now + 300,
            "permissions": ["camera:POLICE:view", "camera:POLICE:export", "camera:METRO:view"]
        })
    }

    fn sign(alg: Algorithm, kid: Option<&str>, pem: &str, c: &Value) -> String {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_owned);
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        };
        jsonwebtoken::encode(&h, c, &key).unwrap()
    }

    fn jwks(keys: &[(&str, Algorithm, &str)]) -> Vec<u8> {
        let keys: Vec<Jwk> = keys
            .iter()
            .map(|(kid, alg, pem)| {
                let enc = match alg {
                    Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
                    _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
                };
                let mut j = Jwk::from_encoding_key(&enc, *alg).unwrap();
                j.common.key_id = Some((*kid).to_owned());
                j
            })
            .collect();
        serde_json::to_vec(&JwkSet { keys }).unwrap()
    }

    #[test]
    fn an_rs256_token_from_the_jwks_maps_its_permissions_to_grants() {
        let idp = ExternalIssuer::new(cfg(KeySource::JwksUrl("https://idp/certs".into()))).unwrap();
        assert_eq!(
            idp.set_jwks(&jwks(&[
                ("a", Algorithm::RS256, RSA_A),
                ("e", Algorithm::ES256, EC_A)
            ]))
            .unwrap(),
            2
        );
        let now = 1_800_000_000;
        let t = sign(Algorithm::RS256, Some("a"), RSA_A, &claims(now));
        let id = idp.verify(&t, now).unwrap();
        assert_eq!(id.username, "k.saeed");
        assert_eq!(id.subject, "f81d4fae");
        let g: Vec<(String, String)> = id
            .grants
            .iter()
            .map(|g| (g.role.clone(), g.scope.as_str().to_owned()))
            .collect();
        assert_eq!(
            g,
            [
                ("operator".to_owned(), "POLICE".to_owned()),
                ("viewer".to_owned(), "METRO".to_owned())
            ]
        );
        let es = sign(Algorithm::ES256, Some("e"), EC_A, &claims(now));
        assert!(idp.verify(&es, now).is_ok());
        // Through the verifier, chosen by `iss`.
        let v = Verifier {
            local: None,
            external: vec![idp],
        };
        assert_eq!(v.verify(&t, now).unwrap().subject, "f81d4fae");
    }

    #[test]
    fn refused_expired_early_foreign_key_none_hs256_other_issuer_other_audience() {
        let idp = ExternalIssuer::new(cfg(KeySource::JwksUrl("https://idp/certs".into()))).unwrap();
        idp.set_jwks(&jwks(&[("a", Algorithm::RS256, RSA_A)]))
            .unwrap();
        let now = 1_800_000_000;
        let ok = claims(now);
        let t = |c: &Value| sign(Algorithm::RS256, Some("a"), RSA_A, c);
        let with = |k: &str, v: Value| {
            let mut c = ok.clone();
            c[k] = v;
            c
        };
        // Expired beyond the 60 s skew; not yet valid beyond it; within it both pass.
        assert_eq!(idp.verify(&t(&ok), now + 360), Err(TokenError::Expired));
        assert!(idp.verify(&t(&ok), now + 359).is_ok());
        assert_eq!(idp.verify(&t(&ok), now - 61), Err(TokenError::NotYetValid));
        assert!(idp.verify(&t(&ok), now - 60).is_ok());
        // Signed by another key under the trusted kid.
        let foreign = sign(Algorithm::RS256, Some("a"), RSA_B, &ok);
        assert_eq!(idp.verify(&foreign, now), Err(TokenError::Signature));
        // A kid it does not know: fetch the JWKS again.
        let unknown = sign(Algorithm::RS256, Some("b"), RSA_B, &ok);
        assert_eq!(
            idp.verify(&unknown, now),
            Err(TokenError::UnknownKey("b".into()))
        );
        // alg none.
        let payload = t(&ok).split('.').nth(1).unwrap().to_owned();
        let none = format!("eyJhbGciOiJub25lIiwia2lkIjoiYSJ9.{payload}.");
        assert!(
            matches!(
                idp.verify(&none, now),
                Err(TokenError::Malformed | TokenError::Algorithm(_))
            ),
            "{:?}",
            idp.verify(&none, now)
        );
        // HS256 with the RSA public key as the HMAC secret.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("a".into());
        let hs =
            jsonwebtoken::encode(&h, &ok, &EncodingKey::from_secret(RSA_A_PUB.as_bytes())).unwrap();
        assert_eq!(
            idp.verify(&hs, now),
            Err(TokenError::Algorithm("HS256".into()))
        );
        // An RSA key offered as ES256.
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("a".into());
        let es = jsonwebtoken::encode(&h, &ok, &EncodingKey::from_ec_pem(EC_A.as_bytes()).unwrap())
            .unwrap();
        assert_eq!(
            idp.verify(&es, now),
            Err(TokenError::Algorithm("ES256".into()))
        );
        // Another issuer (signed by the trusted key), another audience, no audience.
        assert_eq!(
            idp.verify(&t(&with("iss", json!("https://evil.example"))), now),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            idp.verify(&t(&with("aud", json!("another-app"))), now),
            Err(TokenError::Audience)
        );
        let mut no_aud = ok.clone();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert_eq!(idp.verify(&t(&no_aud), now), Err(TokenError::Audience));
        // Through the verifier, a token naming an issuer nobody configured.
        let v = Verifier {
            local: None,
            external: vec![idp],
        };
        assert_eq!(
            v.verify(&t(&with("iss", json!("https://evil.example"))), now),
            Err(TokenError::UnknownIssuer("https://evil.example".into()))
        );
    }

    #[test]
    fn a_jwks_rotation_takes_the_new_key_and_drops_the_old() {
        let idp = ExternalIssuer::new(cfg(KeySource::JwksUrl("https://idp/certs".into()))).unwrap();
        idp.set_jwks(&jwks(&[("a", Algorithm::RS256, RSA_A)]))
            .unwrap();
        let now = 1_800_000_000;
        let old = sign(Algorithm::RS256, Some("a"), RSA_A, &claims(now));
        let new = sign(Algorithm::RS256, Some("b"), RSA_B, &claims(now));
        assert!(idp.verify(&old, now).is_ok());
        assert_eq!(
            idp.verify(&new, now),
            Err(TokenError::UnknownKey("b".into()))
        );
        idp.set_jwks(&jwks(&[("b", Algorithm::RS256, RSA_B)]))
            .unwrap();
        assert_eq!(idp.key_ids(), ["b"]);
        assert!(idp.verify(&new, now).is_ok());
        assert_eq!(
            idp.verify(&old, now),
            Err(TokenError::UnknownKey("a".into()))
        );
        // A document that is not a key set leaves the keys as they were.
        assert!(idp.set_jwks(b"<html>").is_err());
        assert!(idp.verify(&new, now).is_ok());
    }

    #[test]
    fn a_pem_key_needs_no_kid_and_a_role_claim_maps_to_its_agencies() {
        let idp = ExternalIssuer::new(cfg(KeySource::Pem(RSA_A_PUB.into()))).unwrap();
        let now = 1_800_000_000;
        let c = json!({
            "iss": ISS, "aud": ["other", "vantage"], "sub": "svc-wall", "exp": now + 60,
            "role": "supervisor", "agency": ["METRO", "BUS"]
        });
        let id = idp
            .verify(&sign(Algorithm::RS256, None, RSA_A, &c), now)
            .unwrap();
        assert_eq!(id.username, "svc-wall");
        assert_eq!(
            id.grants
                .iter()
                .map(|g| format!("{}@{}", g.role, g.scope.as_str()))
                .collect::<Vec<_>>(),
            ["supervisor@BUS", "supervisor@METRO"]
        );
        // An unknown role grants nothing (the caller is known, may do nothing).
        let mut c2 = c.clone();
        c2["role"] = json!("superuser");
        let id = idp
            .verify(&sign(Algorithm::RS256, None, RSA_A, &c2), now)
            .unwrap();
        assert!(id.grants.is_empty());
        // An EC PEM issuer refuses RS256.
        let ec = ExternalIssuer::new(cfg(KeySource::Pem(EC_A_PUB.into()))).unwrap();
        assert_eq!(
            ec.verify(&sign(Algorithm::RS256, None, RSA_A, &c), now),
            Err(TokenError::Algorithm("RS256".into()))
        );
        assert!(
            ec.verify(&sign(Algorithm::ES256, None, EC_A, &c), now)
                .is_ok()
        );
        // Configuration errors.
        let mut bad = cfg(KeySource::Pem("not a key".into()));
        assert!(ExternalIssuer::new(bad.clone()).is_err());
        bad.keys = KeySource::Pem(RSA_A_PUB.into());
        bad.algorithms = vec![Algorithm::HS256];
        assert!(ExternalIssuer::new(bad).is_err());
        let _ = RSA_B_PUB;
    }
}
