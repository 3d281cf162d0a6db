//! Signed evidence exports (design 0008, "Signed manifest").
//!
//! An export is an MP4 file plus `<id>.manifest.json`:
//!
//! ```json
//! {"manifest": {"format": "vantage-export/1", "camera_id": "...", "sha256": "...", ...},
//!  "signature": {"algorithm": "Ed25519", "key_id": "...", "public_key": "...", "value": "..."}}
//! ```
//!
//! - [`SigningKey`]: the node's Ed25519 key, a PKCS#8 PEM file of mode 0600 created on first use
//!   ([`SigningKey::load_or_create`]); its public half is a [`PublicKey`] (SPKI PEM for people and
//!   the API, raw base64 inside manifests, a short [`PublicKey::key_id`]).
//! - [`Manifest`] / [`SignedManifest`]: the typed manifest and its signature. The signature covers
//!   the manifest object's canonical JSON ([`canonical`]: keys sorted by bytes, no whitespace,
//!   only strings, integers, booleans, null and nested arrays/objects).
//! - [`Sha256Writer`] and [`hash_file`]: SHA-256 while streaming an export to disk, and of a file.
//! - [`verify`] / [`verify_manifest`]: every check a reader of an export needs, as a [`Report`].
//!
//! A manifest file is outside input: it is read bounded ([`MAX_MANIFEST_BYTES`]), parsed without
//! panicking, and rejected when it has duplicate keys (a reader and the verifier could otherwise
//! see different values) or keys the format does not define (a field added after signing fails
//! the signature too, since the signature covers the object exactly as parsed).

pub mod canonical;
mod hash;
mod key;
mod manifest;
mod verify;

pub use hash::{HASH_BUFFER_BYTES, Sha256Writer, hash_file, hash_reader};
pub use key::{PublicKey, SigningKey};
pub use manifest::{ALGORITHM, FORMAT, Manifest, Signature, SignedManifest};
pub use verify::{Check, MAX_MANIFEST_BYTES, Outcome, Report, verify, verify_manifest};

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
