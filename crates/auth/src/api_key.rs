//! API keys for service accounts: `vk_<key id>_<secret>`.
//!
//! - key id: 16 random bytes as 32 lower-case hex digits; the stored row's id, so a presented key
//!   is found by id and never by its secret;
//! - secret: 32 random bytes from the OS, base64url without padding (43 characters).
//!
//! Only the SHA-256 of the secret is stored. A slow hash (argon2) protects low-entropy secrets
//! that people choose, by making each guess expensive; a uniformly random 256-bit secret cannot be
//! guessed however fast each guess is, so one SHA-256 (a preimage of which is out of reach) is
//! enough, and it keeps checking a key on every request cheap. The stored and computed digests
//! are compared with `subtle::ConstantTimeEq`.
//!
//! The full key is shown once, when created ([`NewApiKey::token`]); `Debug` of the types here
//! prints `<redacted>` for it.

use base::{Error, err};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Every API key starts with this.
pub const PREFIX: &str = "vk_";
/// Every refresh token (a login session's, design 0009 "Sessions") starts with this: the same
/// shape as an API key, its id the session's.
pub const REFRESH_PREFIX: &str = "vr_";
const ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;

/// The SHA-256 of an API key's secret: what is stored.
pub type SecretSha256 = [u8; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(secret: &[u8]) -> SecretSha256 {
    Sha256::digest(secret).into()
}

/// A freshly made API key: its id, the key to hand out once, and the digest to store.
pub struct NewApiKey {
    prefix: &'static str,
    id: String,
    token: Zeroizing<String>,
    secret_sha256: SecretSha256,
}

impl NewApiKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> NewApiKey {
        NewApiKey::generate_with(PREFIX)
    }

    /// A new refresh token (`vr_<session id>_<secret>`).
    pub fn generate_refresh() -> NewApiKey {
        NewApiKey::generate_with(REFRESH_PREFIX)
    }

    /// The next refresh token of session `id` (a rotation keeps the session's id).
    pub fn generate_refresh_for(id: &str) -> NewApiKey {
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        OsRng.fill_bytes(secret.as_mut());
        NewApiKey::with_id(REFRESH_PREFIX, id.to_owned(), &secret)
    }

    fn generate_with(prefix: &'static str) -> NewApiKey {
        let mut id = [0u8; ID_BYTES];
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        OsRng.fill_bytes(&mut id);
        OsRng.fill_bytes(secret.as_mut());
        NewApiKey::from_parts_with(prefix, id, &secret)
    }

    /// A key from given bytes (tests).
    pub fn from_parts(id: [u8; ID_BYTES], secret: &[u8; SECRET_BYTES]) -> NewApiKey {
        NewApiKey::from_parts_with(PREFIX, id, secret)
    }

    /// A refresh token from given bytes (tests).
    pub fn from_parts_refresh(id: [u8; ID_BYTES], secret: &[u8; SECRET_BYTES]) -> NewApiKey {
        NewApiKey::from_parts_with(REFRESH_PREFIX, id, secret)
    }

    fn from_parts_with(
        prefix: &'static str,
        id: [u8; ID_BYTES],
        secret: &[u8; SECRET_BYTES],
    ) -> NewApiKey {
        NewApiKey::with_id(prefix, hex(&id), secret)
    }

    fn with_id(prefix: &'static str, id: String, secret: &[u8; SECRET_BYTES]) -> NewApiKey {
        let token = Zeroizing::new(format!("{prefix}{id}_{}", URL_SAFE_NO_PAD.encode(secret)));
        NewApiKey {
            prefix,
            id,
            token,
            secret_sha256: sha256(secret),
        }
    }

    /// The key id (32 hex digits), stored in clear as the row's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The whole key, `vk_<id>_<secret>`: print it once and forget it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The SHA-256 of the secret, to store.
    pub fn secret_sha256(&self) -> SecretSha256 {
        self.secret_sha256
    }
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("prefix", &self.prefix)
            .field("id", &self.id)
            .field("token", &format_args!("<redacted>"))
            .finish()
    }
}

/// A key as presented by a client, parsed.
pub struct ApiKeyToken {
    id: String,
    secret: Zeroizing<Vec<u8>>,
}

impl ApiKeyToken {
    /// Parses `vk_<32 hex digits>_<43 base64url characters>`. The error (`Unauthenticated`)
    /// never contains the presented text.
    pub fn parse(s: &str) -> Result<ApiKeyToken, Error> {
        ApiKeyToken::parse_with(s, PREFIX, "malformed API key")
    }

    /// Parses a refresh token, `vr_<32 hex digits>_<43 base64url characters>`.
    pub fn parse_refresh(s: &str) -> Result<ApiKeyToken, Error> {
        ApiKeyToken::parse_with(s, REFRESH_PREFIX, "malformed refresh token")
    }

    fn parse_with(s: &str, prefix: &str, what: &'static str) -> Result<ApiKeyToken, Error> {
        let malformed = || err!(Unauthenticated, "{what}");
        let rest = s.strip_prefix(prefix).ok_or_else(malformed)?;
        let (id, secret) = rest.split_once('_').ok_or_else(malformed)?;
        if id.len() != 2 * ID_BYTES
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(malformed());
        }
        let secret = Zeroizing::new(URL_SAFE_NO_PAD.decode(secret).map_err(|_| malformed())?);
        if secret.len() != SECRET_BYTES {
            return Err(malformed());
        }
        Ok(ApiKeyToken {
            id: id.to_owned(),
            secret,
        })
    }

    /// The key id, to look the stored key up by.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this key's secret hashes to `stored` (compared in constant time).
    pub fn matches(&self, stored: &[u8]) -> bool {
        sha256(&self.secret).ct_eq(stored).into()
    }
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyToken")
            .field("id", &self.id)
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_have_their_own_prefix() {
        let r = NewApiKey::generate_refresh();
        assert!(r.token().starts_with("vr_"));
        let t = ApiKeyToken::parse_refresh(r.token()).unwrap();
        assert_eq!(t.id(), r.id());
        assert!(t.matches(&r.secret_sha256()));
        assert!(ApiKeyToken::parse(r.token()).is_err());
        assert!(ApiKeyToken::parse_refresh(NewApiKey::generate().token()).is_err());
        let next = NewApiKey::generate_refresh_for(r.id());
        assert_eq!(next.id(), r.id());
        assert_ne!(next.secret_sha256(), r.secret_sha256());
        assert_eq!(
            ApiKeyToken::parse_refresh(next.token()).unwrap().id(),
            r.id()
        );
    }

    #[test]
    fn generated_keys_parse_and_match_their_digest_only() {
        let k = NewApiKey::generate();
        let t = k.token();
        assert!(t.starts_with("vk_"), "{t}");
        assert_eq!(t.len(), 3 + 32 + 1 + 43, "{t}");
        let p = ApiKeyToken::parse(t).unwrap();
        assert_eq!(p.id(), k.id());
        assert!(p.matches(&k.secret_sha256()));
        let other = NewApiKey::generate();
        assert_ne!(other.id(), k.id());
        assert!(!p.matches(&other.secret_sha256()));
        assert!(!p.matches(&[]), "a short stored digest never matches");
    }

    #[test]
    fn known_bytes_and_a_secret_containing_underscores() {
        // 0xff bytes encode as `_` in base64url: the id/secret split must not be fooled.
        let k = NewApiKey::from_parts([0xab; 16], &[0xff; 32]);
        assert_eq!(
            k.token(),
            format!("vk_{}_{}", "ab".repeat(16), "_".repeat(42) + "8")
        );
        let p = ApiKeyToken::parse(k.token()).unwrap();
        assert_eq!(p.id(), "ab".repeat(16));
        assert!(p.matches(&Sha256::digest([0xff; 32])));
    }

    #[test]
    fn malformed_keys_are_refused_without_echo() {
        let good = NewApiKey::from_parts([1; 16], &[2; 32]);
        let t = good.token().to_owned();
        let bad = [
            String::new(),
            "vk_".into(),
            t.replacen("vk_", "vx_", 1),
            t.to_uppercase(),
            t[..t.len() - 1].to_owned(),
            format!("{t}A"),
            t.replacen('_', "", 2),
            format!("vk_{}_{}", "0".repeat(31), &t[36..]),
            format!("{}!", &t[..t.len() - 1]),
        ];
        for b in bad {
            let e = ApiKeyToken::parse(&b).unwrap_err();
            assert_eq!(e.kind(), base::ErrorKind::Unauthenticated, "{b}");
            assert_eq!(e.to_string(), "malformed API key");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = NewApiKey::generate();
        let secret = &k.token()[36..];
        let d = format!("{k:?}");
        assert!(d.contains("<redacted>") && !d.contains(secret), "{d}");
        let p = ApiKeyToken::parse(k.token()).unwrap();
        let d = format!("{p:?}");
        assert!(d.contains("<redacted>") && !d.contains(secret), "{d}");
    }
}
