//! The node's own access tokens: short-lived JWTs issued at login, EdDSA with the node's session
//! key, carrying the user's role and agencies and the login session they belong to.

use crate::{Grant, Identity, Scope, TokenError, check_times, jwt_error, normalize};
use base::Error;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The audience of the node's own tokens.
pub const AUDIENCE: &str = "vantage";

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    name: String,
    role: String,
    /// Agency ids; `["*"]` for every agency.
    agencies: Vec<String>,
    sid: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Issues and verifies the node's access tokens.
pub struct LocalIssuer {
    issuer: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    leeway: u64,
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// What a new token is for.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    pub role: &'a str,
    /// Agency ids; empty or `*` for every agency.
    pub agencies: &'a [String],
    pub session_id: &'a str,
}

impl LocalIssuer {
    /// `issuer` names the node (`iss`); the key is an Ed25519 key pair as PKCS#8 and SPKI PEM.
    /// Tokens live `ttl`; `leeway` seconds of clock skew are allowed (nodes behind one load
    /// balancer verify each other's tokens).
    pub fn new(
        issuer: &str,
        private_pem: &[u8],
        public_pem: &[u8],
        ttl: Duration,
        leeway: u64,
    ) -> Result<Self, Error> {
        let encoding = EncodingKey::from_ed_pem(private_pem)
            .map_err(|_| base::err!(InvalidArgument, "the session key is not an Ed25519 key"))?;
        let decoding = DecodingKey::from_ed_pem(public_pem).map_err(|_| {
            base::err!(
                InvalidArgument,
                "the session public key is not an Ed25519 key"
            )
        })?;
        Ok(LocalIssuer {
            issuer: issuer.to_owned(),
            encoding,
            decoding,
            ttl,
            leeway,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `who` issued at `now` (Unix seconds); returns it and its expiry.
    pub fn issue(&self, who: &Subject<'_>, now: u64) -> Result<(String, u64), Error> {
        let exp = now.saturating_add(self.ttl.as_secs());
        let agencies = if who.agencies.is_empty() {
            vec!["*".to_owned()]
        } else {
            who.agencies.to_vec()
        };
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            sub: who.user_id.to_owned(),
            name: who.username.to_owned(),
            role: who.role.to_owned(),
            agencies,
            sid: who.session_id.to_owned(),
            iat: now,
            nbf: now,
            exp,
        };
        let t = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(|_| base::err!(Internal, "signing an access token failed"))?;
        Ok((t, exp))
    }

    /// Verifies one of this node's tokens at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Identity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let mut v = Validation::new(Algorithm::EdDSA);
        // Times are checked below on the caller's clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["aud", "iss", "exp"].map(str::to_owned).into();
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[AUDIENCE]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).map_err(|e| jwt_error(&e))?;
        let c = data.claims;
        check_times(c.exp, Some(c.nbf), now, self.leeway)?;
        let grants = c
            .agencies
            .iter()
            .map(|a| Grant {
                role: c.role.clone(),
                scope: Scope::parse(a),
            })
            .collect();
        Ok(Identity {
            issuer: c.iss,
            subject: c.sub,
            username: c.name,
            grants: normalize(grants),
            session_id: Some(c.sid),
            expires_at: c.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::*;

    fn issuer(name: &str) -> LocalIssuer {
        LocalIssuer::new(
            name,
            ED_NODE.as_bytes(),
            ED_NODE_PUB.as_bytes(),
            Duration::from_secs(900),
            5,
        )
        .unwrap()
    }

    fn who<'a>(agencies: &'a [String]) -> Subject<'a> {
        Subject {
            user_id: "u-1",
            username: "amal",
            role: "operator",
            agencies,
            session_id: "s-1",
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires_on_the_given_clock() {
        let i = issuer("vantage:node-a");
        let agencies = ["METRO".to_owned(), "BUS".to_owned()];
        let (t, exp) = i.issue(&who(&agencies), 1_000).unwrap();
        assert_eq!(exp, 1_900);
        let id = i.verify(&t, 1_000).unwrap();
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.username, "amal");
        assert_eq!(id.session_id.as_deref(), Some("s-1"));
        assert_eq!(
            id.grants
                .iter()
                .map(|g| g.scope.as_str())
                .collect::<Vec<_>>(),
            ["BUS", "METRO"]
        );
        assert!(id.grants.iter().all(|g| g.role == "operator"));
        assert!(i.verify(&t, 1_904).is_ok(), "within the skew");
        assert_eq!(i.verify(&t, 1_905), Err(TokenError::Expired));
        assert_eq!(i.verify(&t, 990), Err(TokenError::NotYetValid));
        let (all, _) = i.issue(&who(&[]), 1_000).unwrap();
        assert_eq!(i.verify(&all, 1_000).unwrap().grants[0].scope, Scope::All);
    }

    #[test]
    fn another_nodes_name_or_a_changed_byte_is_refused() {
        let (a, b) = (issuer("vantage:node-a"), issuer("vantage:node-b"));
        let (t, _) = a.issue(&who(&[]), 1_000).unwrap();
        assert_eq!(b.verify(&t, 1_000), Err(TokenError::Issuer));
        // One character of the claims changed: the signature no longer verifies.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut claims = parts[1].clone().into_bytes();
        claims[10] = if claims[10] == b'A' { b'B' } else { b'A' };
        parts[1] = String::from_utf8(claims).unwrap();
        let forged = parts.join(".");
        assert!(
            matches!(
                a.verify(&forged, 1_000),
                Err(TokenError::Signature | TokenError::Malformed)
            ),
            "{:?}",
            a.verify(&forged, 1_000)
        );
        // alg none with the same claims.
        let none = format!("eyJhbGciOiJub25lIn0.{}.", t.split('.').nth(1).unwrap());
        assert!(matches!(
            a.verify(&none, 1_000),
            Err(TokenError::Malformed | TokenError::Algorithm(_))
        ));
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }
}
