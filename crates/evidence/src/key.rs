//! The export signing key (Ed25519) and its public half.

use crate::hash::io_err;
use base::{Error, ErrorKind, ResultExt, bail, err};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use zeroize::Zeroizing;

/// Largest key file (private or public PEM) read; an Ed25519 PEM is about 120 bytes.
const MAX_PEM_BYTES: u64 = 64 * 1024;

/// The node's Ed25519 export signing key.
///
/// Stored as a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`) of mode 0600. The private key never
/// appears in `Debug` output, logs or error messages: `Debug` shows the [`PublicKey::key_id`] only.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl SigningKey {
    /// Loads the key at `path`, or creates it there when no file exists.
    ///
    /// Creation writes a temporary file (mode 0600, `create_new`) in the same directory, syncs it,
    /// then hard-links it to `path`, which fails when `path` exists: of two processes creating the
    /// key at once, exactly one wins and the other loads the winner's key (a `rename` would let the
    /// second silently replace the first one's key after it had signed with it). The directory is
    /// synced after the link.
    ///
    /// Loading **refuses** (error kind `FailedPrecondition`) a file that is not a regular file or
    /// whose mode gives any permission to group or others, as OpenSSH does with private keys: a
    /// key others could read, or replace, cannot vouch for an export. `chmod 600` fixes it.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        match Self::load(path) {
            Ok(k) => return Ok(k),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = Self::generate();
        match key.create_file(path) {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(e),
        }
    }

    /// Loads an existing key file (see [`SigningKey::load_or_create`] for what is refused).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let f =
            std::fs::File::open(path).map_err(|e| io_err(e, path, "cannot open signing key"))?;
        let meta = f
            .metadata()
            .map_err(|e| io_err(e, path, "cannot stat signing key"))?;
        if !meta.is_file() {
            bail!(
                FailedPrecondition,
                "signing key {} is not a regular file",
                path.display()
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    FailedPrecondition,
                    "signing key {} has mode {mode:04o}: group or others may use it; \
                     refusing it (chmod 600 it, and replace the key if others may have read it)",
                    path.display()
                );
            }
        }
        let mut pem = Zeroizing::new(String::new());
        f.take(MAX_PEM_BYTES)
            .read_to_string(&mut pem)
            .map_err(|e| io_err(e, path, "cannot read signing key"))?;
        // The decoder's errors name ASN.1/PEM structure, never key bytes.
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            err!(
                DataLoss,
                "signing key {} is not a PKCS#8 Ed25519 private key in PEM: {e}",
                path.display()
            )
        })?;
        Ok(Self::from_dalek(key))
    }

    /// A new random key (from the operating system's generator), not stored anywhere.
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    /// The key whose 32-byte secret seed is `seed`. For tests and reproducible fixtures only: a
    /// real key comes from [`SigningKey::generate`].
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let public = PublicKey(key.verifying_key());
        SigningKey { key, public }
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), for `--public-key`.
    pub fn public_key_pem(&self) -> String {
        self.public.to_pem()
    }

    /// See [`PublicKey::key_id`].
    pub fn key_id(&self) -> String {
        self.public.key_id()
    }

    /// The Ed25519 signature of `msg`.
    pub(crate) fn sign_bytes(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    fn create_file(&self, path: &Path) -> Result<(), Error> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| err!(Internal, "cannot encode the signing key: {e}"))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| {
                err!(
                    InvalidArgument,
                    "signing key path {} has no file name",
                    path.display()
                )
            })?
            .to_string_lossy();
        let tmp = dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            self.key_id()
        ));
        let written = write_private(&tmp, pem.as_bytes());
        let linked = written.and_then(|()| {
            std::fs::hard_link(&tmp, path).map_err(|e| io_err(e, path, "cannot create signing key"))
        });
        let _ = std::fs::remove_file(&tmp);
        linked?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().err_kind(
                ErrorKind::Unavailable,
                format!("cannot sync {}", dir.display()),
            )?;
        }
        Ok(())
    }
}

/// Writes `data` to a new file of mode 0600 and syncs it.
fn write_private(path: &Path, data: &[u8]) -> Result<(), Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| io_err(e, path, "cannot create"))?;
    // Exactly 0600 whatever the umask (which could only have removed the owner's bits).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_err(e, path, "cannot set the mode of"))?;
    }
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(e, path, "cannot write"))
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// From SPKI PEM text (`-----BEGIN PUBLIC KEY-----`), as `--public-key` files hold.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim())
            .map(PublicKey)
            .map_err(|e| {
                err!(
                    InvalidArgument,
                    "not an Ed25519 public key in SPKI PEM: {e}"
                )
            })
    }

    /// Reads an SPKI PEM file (bounded).
    pub fn from_pem_file(path: &Path) -> Result<Self, Error> {
        let f = std::fs::File::open(path).map_err(|e| io_err(e, path, "cannot open"))?;
        let mut bytes = Vec::new();
        f.take(MAX_PEM_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(e, path, "cannot read"))?;
        let pem = String::from_utf8(bytes).map_err(|_| {
            err!(
                InvalidArgument,
                "{}: not an Ed25519 public key in SPKI PEM (not text)",
                path.display()
            )
        })?;
        Self::from_pem(&pem).map_err(|e| e.context(path.display()))
    }

    /// From the standard base64 of the raw 32 bytes, as manifests carry it.
    pub fn from_base64(s: &str) -> Result<Self, Error> {
        let bytes = B64
            .decode(s)
            .map_err(|e| err!(InvalidArgument, "public key is not base64: {e}"))?;
        let raw: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            err!(InvalidArgument, "public key is {} bytes, not 32", b.len())
        })?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map(PublicKey)
            .map_err(|e| err!(InvalidArgument, "not an Ed25519 public key: {e}"))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Standard base64 (with padding) of the raw 32 bytes.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0.as_bytes())
    }

    /// SPKI PEM with LF line endings.
    pub fn to_pem(&self) -> String {
        // Encoding 32 bytes in a fixed structure cannot fail; an empty string would fail any use.
        self.0.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The first 16 hex digits of the SHA-256 of the raw 32-byte public key: a short name for the
    /// key in manifests, logs and reports (a name, not a security check: the full key is compared).
    pub fn key_id(&self) -> String {
        let mut id = crate::hex(&Sha256::digest(self.0.as_bytes()));
        id.truncate(16);
        id
    }

    /// Whether `signature` is this key's Ed25519 signature of `msg` (strict verification: rejects
    /// non-canonical and small-order encodings, so one message has one valid signature per key).
    pub fn verify(&self, msg: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("evidence-key-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn created_with_mode_0600_and_reloads_the_same_key() {
        let d = temp_dir("create");
        let path = d.join("export-signing-key.pem");
        let k = SigningKey::load_or_create(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("export-signing-key.pem")]
        );

        let again = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(again.public_key_pem(), k.public_key_pem());
        assert_eq!(again.key_id(), k.key_id());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "not rewritten"
        );
        // A fresh key differs.
        assert_ne!(SigningKey::generate().key_id(), k.key_id());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn racing_creators_agree_on_one_key() {
        let d = temp_dir("race");
        let path = d.join("k.pem");
        let ids: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| SigningKey::load_or_create(&path).unwrap().key_id()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let on_disk = SigningKey::load(&path).unwrap().key_id();
        assert!(ids.iter().all(|i| *i == on_disk), "{ids:?} vs {on_disk}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_a_key_others_can_read_and_a_corrupt_one() {
        let d = temp_dir("mode");
        let path = d.join("k.pem");
        SigningKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = SigningKey::load_or_create(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert!(e.to_string().contains("mode 0640"), "{e}");
        assert!(e.to_string().contains("chmod 600"), "{e}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = SigningKey::load_or_create(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DataLoss);
        assert!(e.to_string().contains("not a PKCS#8 Ed25519"), "{e}");

        let e = SigningKey::load_or_create(&d).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn secrets_stay_out_of_debug_and_public_forms() {
        let seed: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(73).wrapping_add(11));
        let k = SigningKey::from_seed(&seed);
        // The seed in hex and in base64 at each of the three byte alignments, as a PEM holds it.
        let mut secret_forms = vec![crate::hex(&seed)];
        for skip in 0..3 {
            let b = B64.encode(&seed[skip..]);
            secret_forms.push(b[..20].to_owned());
        }
        let pem = k.key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = B64.decode(&pem_body).unwrap();
        assert!(
            der.windows(32).any(|w| w == seed),
            "the private PEM holds the seed"
        );
        let dbg = format!("{k:?} {:?}", k.public_key());
        for shown in [
            dbg.as_str(),
            &k.public_key_pem(),
            &k.public_key().to_base64(),
        ] {
            for secret in &secret_forms {
                assert!(!shown.contains(secret.as_str()), "{shown}");
            }
        }
        assert_eq!(
            dbg,
            format!(
                "SigningKey {{ key_id: {:?}, .. }} PublicKey({})",
                k.key_id(),
                k.key_id()
            )
        );
    }

    #[test]
    fn public_key_forms_round_trip() {
        let k = SigningKey::from_seed(&[1u8; 32]);
        let p = *k.public_key();
        assert_eq!(PublicKey::from_pem(&k.public_key_pem()).unwrap(), p);
        assert_eq!(PublicKey::from_base64(&p.to_base64()).unwrap(), p);
        assert!(
            k.public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        assert_eq!(k.key_id().len(), 16);
        assert!(
            k.key_id()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(PublicKey::from_base64("AAAA").is_err());
        assert!(PublicKey::from_base64("!!").is_err());
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----").is_err()
        );
        let sig = k.sign_bytes(b"msg");
        assert!(p.verify(b"msg", &sig));
        assert!(!p.verify(b"msh", &sig));
        assert!(
            !SigningKey::from_seed(&[2u8; 32])
                .public_key()
                .verify(b"msg", &sig)
        );
    }
}
