//! The export manifest and its signature.

use crate::SigningKey;
use crate::canonical::{canonical_json, quote_short};
use base::time::rfc3339;
use base::{Error, bail, err};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// The manifest format this crate writes and verifies.
pub const FORMAT: &str = "vantage-export/1";

/// The one signature algorithm.
pub const ALGORITHM: &str = "Ed25519";

/// What an export is: which camera, which range, which file. Every field is signed.
///
/// Times are RFC 3339 text (as the API shows them). `agency` is left out of the JSON when `None`
/// (so a manifest holds only strings, integers and booleans). Unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    pub export_id: String,
    pub camera_id: String,
    pub camera_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// The requested range.
    pub start_time: String,
    pub end_time: String,
    /// The MP4's file name (no directory).
    pub file_name: String,
    pub file_size: u64,
    /// Lower-case hex SHA-256 of the MP4.
    pub sha256: String,
    pub video_frames: u64,
    pub audio: bool,
    /// The user who asked for the export.
    pub created_by: String,
    pub created_at: String,
    pub vantage_version: String,
}

impl Manifest {
    /// Everything wrong with the fields' values (empty when none): the format, the times (RFC
    /// 3339, end not before start), the SHA-256 (64 lower-case hex digits), a file name without a
    /// directory, and non-empty ids.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.format != FORMAT {
            p.push(format!(
                "format is {}, not {FORMAT}",
                quote_short(&self.format)
            ));
        }
        for (name, v) in [
            ("export_id", &self.export_id),
            ("camera_id", &self.camera_id),
            ("file_name", &self.file_name),
        ] {
            if v.is_empty() {
                p.push(format!("{name} is empty"));
            }
        }
        let mut times = Vec::new();
        for (name, v) in [
            ("start_time", &self.start_time),
            ("end_time", &self.end_time),
            ("created_at", &self.created_at),
        ] {
            match rfc3339::parse_field(name, v) {
                Ok(t) => times.push(Some(t)),
                Err(e) => {
                    p.push(e.to_string());
                    times.push(None);
                }
            }
        }
        if let [Some(start), Some(end), _] = times[..]
            && end < start
        {
            p.push("end_time is before start_time".to_owned());
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            p.push(format!(
                "sha256 {} is not 64 lower-case hex digits",
                quote_short(&self.sha256)
            ));
        }
        if self.file_name.contains(['/', '\\', '\0'])
            || self.file_name == "."
            || self.file_name == ".."
        {
            p.push(format!(
                "file_name {} is not a plain file name",
                quote_short(&self.file_name)
            ));
        }
        p
    }

    /// The bytes the signature covers: this manifest's canonical JSON.
    pub fn canonical_json(&self) -> Result<Vec<u8>, Error> {
        let v = serde_json::to_value(self)
            .map_err(|e| err!(Internal, "cannot serialize the manifest: {e}"))?;
        canonical_json(&v)
    }
}

/// The signature block of a manifest file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Always [`ALGORITHM`].
    pub algorithm: String,
    /// [`crate::PublicKey::key_id`] of `public_key`.
    pub key_id: String,
    /// Standard base64 of the raw 32-byte Ed25519 public key (compact; the SPKI PEM form is what
    /// `--public-key` and the API give).
    pub public_key: String,
    /// Standard base64 of the 64-byte signature of the manifest's canonical JSON.
    pub value: String,
}

/// The content of `<id>.manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedManifest {
    pub manifest: Manifest,
    pub signature: Signature,
}

impl SignedManifest {
    /// Signs `manifest`; refuses (`InvalidArgument`) one with [`Manifest::problems`].
    pub fn sign(manifest: Manifest, key: &SigningKey) -> Result<Self, Error> {
        let problems = manifest.problems();
        if !problems.is_empty() {
            bail!(
                InvalidArgument,
                "refusing to sign a manifest: {}",
                problems.join("; ")
            );
        }
        let sig = key.sign_bytes(&manifest.canonical_json()?);
        let public = key.public_key();
        Ok(SignedManifest {
            manifest,
            signature: Signature {
                algorithm: ALGORITHM.to_owned(),
                key_id: public.key_id(),
                public_key: public.to_base64(),
                value: B64.encode(sig),
            },
        })
    }

    /// The file's text: indented JSON (manifest fields in declaration order, for people; the
    /// signature does not depend on layout or order), ending with a newline.
    pub fn to_json_pretty(&self) -> Result<String, Error> {
        let mut s = serde_json::to_string_pretty(self)
            .map_err(|e| err!(Internal, "cannot serialize the manifest: {e}"))?;
        s.push('\n');
        Ok(s)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format: FORMAT.to_owned(),
            export_id: "0193a5c2-7d4e-7000-8000-000000000001".to_owned(),
            camera_id: "cam-1".to_owned(),
            camera_name: "Front door".to_owned(),
            agency: Some("ADF".to_owned()),
            start_time: "2026-11-21T08:00:00Z".to_owned(),
            end_time: "2026-11-21T08:05:00Z".to_owned(),
            file_name: "0193a5c2.mp4".to_owned(),
            file_size: 3,
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned(),
            video_frames: 7500,
            audio: true,
            created_by: "alice".to_owned(),
            created_at: "2026-11-21T09:00:00.123Z".to_owned(),
            vantage_version: "0.1.0".to_owned(),
        }
    }

    #[test]
    fn canonical_form_is_sorted_compact_and_stable() {
        let c = String::from_utf8(sample().canonical_json().unwrap()).unwrap();
        assert_eq!(
            c,
            concat!(
                r#"{"agency":"ADF","audio":true,"camera_id":"cam-1","camera_name":"Front door","#,
                r#""created_at":"2026-11-21T09:00:00.123Z","created_by":"alice","#,
                r#""end_time":"2026-11-21T08:05:00Z","export_id":"0193a5c2-7d4e-7000-8000-000000000001","#,
                r#""file_name":"0193a5c2.mp4","file_size":3,"format":"vantage-export/1","#,
                r#""sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","#,
                r#""start_time":"2026-11-21T08:00:00Z","vantage_version":"0.1.0","video_frames":7500}"#
            )
        );
        let mut m = sample();
        m.agency = None;
        let c = String::from_utf8(m.canonical_json().unwrap()).unwrap();
        assert!(c.starts_with(r#"{"audio":true,"#), "{c}");
    }

    /// Ed25519 is deterministic: a fixed key and manifest give a fixed signature, so a change in
    /// the canonical form (which would break every export already signed) fails here.
    #[test]
    fn signature_is_stable() {
        let key = SigningKey::from_seed(&[42u8; 32]);
        let s = SignedManifest::sign(sample(), &key).unwrap();
        assert_eq!(s.signature.algorithm, "Ed25519");
        assert_eq!(s.signature.key_id, key.key_id());
        assert_eq!(s.signature.public_key, key.public_key().to_base64());
        let sig: [u8; 64] = B64.decode(&s.signature.value).unwrap().try_into().unwrap();
        assert!(
            key.public_key()
                .verify(&sample().canonical_json().unwrap(), &sig)
        );
        assert_eq!(
            s.signature.value,
            SignedManifest::sign(sample(), &key)
                .unwrap()
                .signature
                .value
        );
        let text = s.to_json_pretty().unwrap();
        assert!(
            text.starts_with("{\n  \"manifest\": {\n    \"format\": \"vantage-export/1\",\n"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<SignedManifest>(&text).unwrap(), s);
    }

    #[test]
    fn refuses_to_sign_a_bad_manifest() {
        let key = SigningKey::from_seed(&[1u8; 32]);
        let mut m = sample();
        m.format = "vantage-export/2".into();
        m.sha256 = "ABC".into();
        m.end_time = "2026-11-21T07:00:00Z".into();
        m.file_name = "../x.mp4".into();
        m.created_at = "yesterday".into();
        let e = SignedManifest::sign(m, &key).unwrap_err();
        let s = e.to_string();
        for part in [
            "format is",
            "sha256",
            "end_time is before",
            "file_name",
            "created_at must be",
        ] {
            assert!(s.contains(part), "{part}: {s}");
        }
        assert_eq!(e.kind(), base::ErrorKind::InvalidArgument);
    }
}
