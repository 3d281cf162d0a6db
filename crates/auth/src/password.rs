//! Password hashing: argon2id (RustCrypto `argon2`), stored as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), and the minimum password policy.
//!
//! Verification reads the parameters from the stored string, so hashes made with other (older,
//! cheaper, test) parameters still verify; [`Passwords::needs_rehash`] tells when one is weaker
//! than the current parameters. The comparison of the computed and stored hashes is constant time
//! (`password_hash::Output`'s equality is).

use argon2::password_hash::{self, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base::{Error, bail, err};
use rand_core::OsRng;
use std::fmt;
use std::sync::OnceLock;

/// OWASP's minimum for argon2id (Password Storage Cheat Sheet): 19 MiB of memory, 2 passes, 1
/// lane.
pub const DEFAULT_M_COST_KIB: u32 = 19 * 1024;
pub const DEFAULT_T_COST: u32 = 2;
pub const DEFAULT_P_COST: u32 = 1;

/// Passwords shorter than this (in characters) are refused.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Passwords longer than this (in bytes) are refused: hashing has a cost, and no one types more.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The minimum policy: at least [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_BYTES`] bytes, not the username (in any case). The error (`InvalidArgument`)
/// says which rule failed and never contains the password.
pub fn check_password_policy(username: &str, password: &str) -> Result<(), Error> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        bail!(
            InvalidArgument,
            "password too short: it has {chars} characters, at least {MIN_PASSWORD_CHARS} are \
             required"
        );
    }
    if password.len() > MAX_PASSWORD_BYTES {
        bail!(
            InvalidArgument,
            "password too long: at most {MAX_PASSWORD_BYTES} bytes"
        );
    }
    if password.to_lowercase() == username.to_lowercase() {
        bail!(InvalidArgument, "password must not be the username");
    }
    Ok(())
}

/// A stored password hash: an argon2 PHC string. Not a secret as such, but never shown: its
/// `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a stored PHC string, checking that it parses as one.
    pub fn from_phc(phc: String) -> Result<PasswordHash, Error> {
        password_hash::PasswordHash::new(&phc)
            .map_err(|e| err!(DataLoss, "stored password hash is not a PHC string: {e}"))?;
        Ok(PasswordHash(phc))
    }

    /// The PHC string, for storage.
    pub fn as_phc_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Hashes and verifies passwords with one set of argon2id parameters.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of a fixed password, made on first use, verified against when a user does not
    /// exist so that "no such user" and "wrong password" take the same time.
    dummy: std::sync::Arc<OnceLock<Option<PasswordHash>>>,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("m_cost_kib", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish()
    }
}

impl Default for Passwords {
    fn default() -> Passwords {
        Passwords::new()
    }
}

impl Passwords {
    /// OWASP's parameters: m = 19 MiB, t = 2, p = 1 (about 30-60 ms per hash on one core).
    pub fn new() -> Passwords {
        match Params::new(DEFAULT_M_COST_KIB, DEFAULT_T_COST, DEFAULT_P_COST, None) {
            Ok(params) => Passwords::from_params(params),
            // Unreachable: the constants are within argon2's bounds.
            Err(_) => Passwords::from_params(Params::default()),
        }
    }

    /// Other parameters (tests use cheap ones). `m_cost_kib` at least 8 × `p_cost`.
    pub fn with_params(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Passwords, Error> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| err!(InvalidArgument, "argon2 parameters: {e}"))?;
        Ok(Passwords::from_params(params))
    }

    fn from_params(params: Params) -> Passwords {
        Passwords {
            params,
            dummy: std::sync::Arc::new(OnceLock::new()),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` with a fresh random 16-byte salt. Does not apply the policy: call
    /// [`check_password_policy`] first where a person chooses the password.
    pub fn hash(&self, password: &str) -> Result<PasswordHash, Error> {
        let salt = SaltString::generate(&mut OsRng);
        let h = self
            .argon2()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| err!(Internal, "hashing a password: {e}"))?;
        Ok(PasswordHash(h.to_string()))
    }

    /// Whether `password` matches `stored`, with the parameters recorded in `stored`. A stored
    /// string that does not parse never matches.
    pub fn verify(&self, stored: &PasswordHash, password: &str) -> bool {
        match password_hash::PasswordHash::new(&stored.0) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the time of one [`Passwords::verify`] and returns false: for a login naming a user
    /// that does not exist (or has no password), so that timing does not tell users apart.
    pub fn verify_nobody(&self, password: &str) -> bool {
        let dummy = self
            .dummy
            .get_or_init(|| self.hash("vantage-no-such-user-dummy").ok());
        if let Some(d) = dummy {
            let _ = self.verify(d, password);
        }
        false
    }

    /// Whether `stored` was made with other parameters than these (or is not argon2id): the
    /// caller may rehash after the next successful login.
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        let Ok(parsed) = password_hash::PasswordHash::new(&stored.0) else {
            return true;
        };
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::with_params(64, 1, 1).unwrap()
    }

    #[test]
    fn default_parameters_are_owasps_and_verify() {
        let p = Passwords::new();
        let h = p.hash("correct horse battery").unwrap();
        assert!(
            h.as_phc_str()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            h.as_phc_str()
        );
        assert!(p.verify(&h, "correct horse battery"));
        assert!(!p.verify(&h, "correct horse batterY"));
        assert!(!p.needs_rehash(&h));
    }

    #[test]
    fn hashes_are_salted_and_carry_their_parameters() {
        let p = cheap();
        let a = p.hash("same password").unwrap();
        let b = p.hash("same password").unwrap();
        assert_ne!(a, b, "random salt");
        // Verification uses the stored parameters, whatever the verifier's own.
        let strong = Passwords::with_params(128, 2, 1).unwrap();
        assert!(strong.verify(&a, "same password"));
        assert!(strong.needs_rehash(&a));
        assert!(!p.needs_rehash(&a));
        assert!(!p.verify(&a, ""));
        assert!(!p.verify_nobody("same password"));
    }

    #[test]
    fn garbage_stored_hashes_never_match() {
        let p = cheap();
        assert!(PasswordHash::from_phc("plain".into()).is_err());
        let bogus = PasswordHash("not a phc".into());
        assert!(!p.verify(&bogus, "not a phc"));
        assert!(p.needs_rehash(&bogus));
        let h = p.hash("x").unwrap();
        assert!(PasswordHash::from_phc(h.as_phc_str().to_owned()).is_ok());
    }

    #[test]
    fn debug_hides_the_hash() {
        let h = cheap().hash("secret-password").unwrap();
        let d = format!("{h:?}");
        assert_eq!(d, "PasswordHash(<redacted>)");
        assert!(!d.contains(h.as_phc_str()));
    }

    #[test]
    fn policy() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("alice", "abc12", Some("too short")),
            ("alice", "123456789", Some("too short")),
            ("alice", "1234567890", None),
            ("alice", "ééééééééééé", None), // characters, not bytes
            ("alicealice", "AliceAlice", Some("must not be the username")),
            ("bob", &"x".repeat(MAX_PASSWORD_BYTES + 1), Some("too long")),
        ];
        for (user, pw, want) in cases {
            let got = check_password_policy(user, pw);
            match want {
                None => assert!(got.is_ok(), "{user}/{pw}: {got:?}"),
                Some(w) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.kind(), base::ErrorKind::InvalidArgument);
                    assert!(e.to_string().contains(w), "{e}");
                    assert!(!e.to_string().contains(pw), "password in {e}");
                }
            }
        }
    }
}
