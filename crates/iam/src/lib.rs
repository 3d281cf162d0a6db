//! Access tokens (design 0009, "Tokens"): the node's own session JWTs, issued at login and
//! signed with the node's Ed25519 key ([`LocalIssuer`]), and JWTs from the authority's identity
//! providers, RS256 or ES256, verified against a JWKS or a PEM key ([`ExternalIssuer`]). Both
//! verify to an [`Identity`]: who (issuer, subject, user name) and what the token grants (a role
//! per agency scope, [`Grant`]). What a grant allows is the `auth` crate's business.
//!
//! No I/O and no clock here (as in str0m's core): times are Unix seconds given by the caller
//! (`base::Clocks`), so expiry, not-before and skew are tested on simulated time; fetching a
//! JWKS is the node's job, which hands the document to [`ExternalIssuer::set_jwks`] (on a
//! schedule, and when a token names a key it does not know: [`TokenError::UnknownKey`]).
//!
//! Signatures are checked by `jsonwebtoken` on aws-lc-rs. The accepted algorithms are fixed per
//! issuer before the token is read: the node's own tokens are EdDSA only; an external issuer's are
//! the configured subset of RS256 and ES256, and each key only with its own family. So `alg:
//! none`, HS256 signed with an RSA public key as the secret, or an RSA key offered for ES256 are
//! refused before any signature is computed. Errors never contain the token.

mod external;
mod local;

pub use external::{ClaimMap, ExternalIssuer, IssuerConfig, KeySource};
pub use jsonwebtoken::Algorithm;
pub use local::{AUDIENCE, LocalIssuer, Subject};

use serde::{Deserialize, Serialize};

/// The roles a grant can name (the `auth` crate gives them their meaning).
pub const ROLES: [&str; 5] = ["admin", "supervisor", "operator", "viewer", "service"];

/// Which agencies a grant covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Every agency.
    All,
    /// One agency, by id.
    Agency(String),
}

impl Scope {
    /// `*` is every agency; anything else one agency.
    pub fn parse(s: &str) -> Scope {
        if s == "*" {
            Scope::All
        } else {
            Scope::Agency(s.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Scope::All => "*",
            Scope::Agency(a) => a,
        }
    }
}

/// A role over a scope, as a token grants it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// One of [`ROLES`].
    pub role: String,
    pub scope: Scope,
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `iss`: the node's own issuer name or a configured identity provider's.
    pub issuer: String,
    /// `sub`: the user's id at the issuer.
    pub subject: String,
    /// A display name (the node's user name; an external token's configured claim, else `sub`).
    pub username: String,
    /// What the token grants, sorted, without repeats. May be empty: the caller is known but may
    /// do nothing (403, not 401).
    pub grants: Vec<Grant>,
    /// The node's own tokens: the login session they belong to (revocable by logout).
    pub session_id: Option<String>,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
}

/// Why a token was refused. Shown to the caller (as a 401's reason) and logged: it never holds
/// the token or any part of a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT (three base64url parts, JSON header and claims).
    Malformed,
    /// `iss` is none of the configured issuers.
    UnknownIssuer(String),
    /// The header's `kid` is not in the issuer's key set (yet): fetch its JWKS and try again.
    UnknownKey(String),
    /// The header's `alg` is not accepted for this issuer or key.
    Algorithm(String),
    /// The signature does not verify.
    Signature,
    /// `exp` has passed (beyond the allowed skew).
    Expired,
    /// `nbf` is in the future (beyond the allowed skew).
    NotYetValid,
    /// `aud` is not this node's audience.
    Audience,
    /// `iss` does not match the issuer whose key verified it.
    Issuer,
    /// A claim is missing or of the wrong type.
    Claims(String),
}

impl TokenError {
    /// A stable code for logs and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnknownIssuer(_) => "unknown_issuer",
            TokenError::UnknownKey(_) => "unknown_key",
            TokenError::Algorithm(_) => "algorithm",
            TokenError::Signature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Audience => "wrong_audience",
            TokenError::Issuer => "wrong_issuer",
            TokenError::Claims(_) => "claims",
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Malformed => write!(f, "the token is not a JWT"),
            TokenError::UnknownIssuer(i) => write!(f, "the token's issuer `{i}` is not trusted"),
            TokenError::UnknownKey(k) => write!(f, "the token's key `{k}` is not known"),
            TokenError::Algorithm(a) => write!(f, "the token's algorithm {a} is not accepted"),
            TokenError::Signature => write!(f, "the token's signature does not verify"),
            TokenError::Expired => write!(f, "the token has expired"),
            TokenError::NotYetValid => write!(f, "the token is not valid yet"),
            TokenError::Audience => write!(f, "the token is for another audience"),
            TokenError::Issuer => write!(f, "the token's issuer does not match"),
            TokenError::Claims(c) => write!(f, "the token's claims: {c}"),
        }
    }
}

impl std::error::Error for TokenError {}

impl From<TokenError> for base::Error {
    fn from(e: TokenError) -> base::Error {
        base::err!(Unauthenticated, "{e}")
    }
}

/// `exp` and `nbf` against `now` with `leeway` seconds of clock skew either way.
fn check_times(exp: u64, nbf: Option<u64>, now: u64, leeway: u64) -> Result<(), TokenError> {
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// A `jsonwebtoken` failure as ours (its messages are not shown: some echo input).
fn jwt_error(e: &jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::Signature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
            TokenError::Algorithm("(mismatch)".into())
        }
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        K::InvalidAudience => TokenError::Audience,
        K::InvalidIssuer => TokenError::Issuer,
        K::MissingRequiredClaim(c) => TokenError::Claims(format!("`{c}` is missing")),
        K::InvalidClaimFormat(c) => TokenError::Claims(format!("`{c}` has the wrong type")),
        _ => TokenError::Malformed,
    }
}

/// The issuer a token claims, read without verifying anything (only to choose whose keys verify
/// it; that issuer's validation checks `iss` again).
pub fn issuer_of(token: &str) -> Result<String, TokenError> {
    peek_issuer(token)
}

fn peek_issuer(token: &str) -> Result<String, TokenError> {
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let payload = token.split('.').nth(1).ok_or(TokenError::Malformed)?;
    let bytes = base64_url_decode(payload).ok_or(TokenError::Malformed)?;
    let v: Iss = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    v.iss
        .ok_or_else(|| TokenError::Claims("`iss` is missing".into()))
}

fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

/// Every issuer this node trusts.
#[derive(Default)]
pub struct Verifier {
    pub local: Option<LocalIssuer>,
    pub external: Vec<ExternalIssuer>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("local", &self.local.as_ref().map(LocalIssuer::issuer))
            .field(
                "external",
                &self
                    .external
                    .iter()
                    .map(ExternalIssuer::issuer)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Verifier {
    /// Verifies `token` at `now` (Unix seconds) with the keys of the issuer it names.
    pub fn verify(&self, token: &str, now: u64) -> Result<Identity, TokenError> {
        let iss = peek_issuer(token)?;
        if let Some(l) = self.local.as_ref().filter(|l| l.issuer() == iss) {
            return l.verify(token, now);
        }
        match self.external.iter().find(|e| e.issuer() == iss) {
            Some(e) => e.verify(token, now),
            None => Err(TokenError::UnknownIssuer(iss)),
        }
    }

    /// The external issuer named `iss`.
    pub fn external(&self, iss: &str) -> Option<&ExternalIssuer> {
        self.external.iter().find(|e| e.issuer() == iss)
    }
}

/// Sorts and dedups grants; a grant over every agency makes the same role's agency grants
/// redundant.
fn normalize(mut grants: Vec<Grant>) -> Vec<Grant> {
    let all: Vec<String> = grants
        .iter()
        .filter(|g| g.scope == Scope::All)
        .map(|g| g.role.clone())
        .collect();
    grants.retain(|g| g.scope == Scope::All || !all.contains(&g.role));
    grants.sort();
    grants.dedup();
    grants
}

#[cfg(test)]
mod testkeys {
    pub const RSA_A: &str = include_str!("../testdata/rsa_a.pem");
    pub const RSA_A_PUB: &str = include_str!("../testdata/rsa_a.pub.pem");
    pub const RSA_B: &str = include_str!("../testdata/rsa_b.pem");
    pub const RSA_B_PUB: &str = include_str!("../testdata/rsa_b.pub.pem");
    pub const EC_A: &str = include_str!("../testdata/ec_a.pem");
    pub const EC_A_PUB: &str = include_str!("../testdata/ec_a.pub.pem");
    pub const ED_NODE: &str = include_str!("../testdata/ed_node.pem");
    pub const ED_NODE_PUB: &str = include_str!("../testdata/ed_node.pub.pem");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_allow_the_skew_and_no_more() {
        assert_eq!(check_times(100, None, 99, 0), Ok(()));
        assert_eq!(check_times(100, None, 100, 0), Err(TokenError::Expired));
        assert_eq!(check_times(100, None, 159, 60), Ok(()));
        assert_eq!(check_times(100, None, 160, 60), Err(TokenError::Expired));
        assert_eq!(
            check_times(100, Some(50), 40, 0),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(check_times(100, Some(50), 40, 10), Ok(()));
        assert_eq!(
            check_times(100, Some(50), 39, 10),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn the_issuer_is_peeked_without_trusting_anything_else() {
        // {"alg":"none"} . {"iss":"x","sub":"y"} . (no signature)
        let t = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4Iiwic3ViIjoieSJ9.";
        assert_eq!(peek_issuer(t).unwrap(), "x");
        let v = Verifier::default();
        assert_eq!(v.verify(t, 0), Err(TokenError::UnknownIssuer("x".into())));
        for bad in ["", "a", "a.b", "a.%%%.c", "a.bm90IGpzb24.c"] {
            assert_eq!(peek_issuer(bad), Err(TokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn grants_are_sorted_and_an_all_agencies_grant_absorbs_its_role() {
        let g = |r: &str, s: &str| Grant {
            role: r.into(),
            scope: Scope::parse(s),
        };
        assert_eq!(
            normalize(vec![
                g("viewer", "METRO"),
                g("operator", "POLICE"),
                g("viewer", "*"),
                g("operator", "POLICE"),
            ]),
            vec![g("operator", "POLICE"), g("viewer", "*")]
        );
    }
}
