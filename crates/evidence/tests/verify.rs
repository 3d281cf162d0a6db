//! An export signed and verified end to end, and every kind of tampering a verifier must catch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use evidence::{
    FORMAT, Manifest, Outcome, Report, Sha256Writer, SignedManifest, SigningKey, verify,
    verify_manifest,
};
use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};

struct Export {
    dir: PathBuf,
    mp4: PathBuf,
    manifest: PathBuf,
    key: SigningKey,
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Export {
    /// A 100 KB "MP4" streamed through [`Sha256Writer`], and its signed manifest.
    fn new(name: &str) -> Export {
        let dir = std::env::temp_dir().join(format!("evidence-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = SigningKey::load_or_create(&dir.join("export-signing-key.pem")).unwrap();
        let mp4 = dir.join("0193a5c2.mp4");
        let mut w = Sha256Writer::new(std::fs::File::create(&mp4).unwrap());
        for i in 0..100u32 {
            w.write_all(&[(i % 251) as u8; 1000]).unwrap();
        }
        let (f, file_size, sha256) = w.finish();
        f.sync_all().unwrap();
        let m = Manifest {
            format: FORMAT.into(),
            export_id: "0193a5c2".into(),
            camera_id: "cam-1".into(),
            camera_name: "Front door".into(),
            agency: None,
            start_time: "2026-11-21T08:00:00Z".into(),
            end_time: "2026-11-21T08:05:00Z".into(),
            file_name: "0193a5c2.mp4".into(),
            file_size,
            sha256,
            video_frames: 7500,
            audio: false,
            created_by: "alice".into(),
            created_at: "2026-11-21T09:00:00Z".into(),
            vantage_version: "0.1.0".into(),
        };
        let signed = SignedManifest::sign(m, &key).unwrap();
        let manifest = dir.join("0193a5c2.manifest.json");
        std::fs::write(&manifest, signed.to_json_pretty().unwrap()).unwrap();
        Export {
            dir,
            mp4,
            manifest,
            key,
        }
    }

    fn verify(&self, public_key: Option<&str>) -> Report {
        verify(&self.mp4, &self.manifest, public_key)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.manifest).unwrap()).unwrap()
    }

    fn set_json(&self, v: &Value) {
        std::fs::write(&self.manifest, serde_json::to_string_pretty(v).unwrap()).unwrap();
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.json();
        f(&mut v);
        self.set_json(&v);
    }
}

fn outcome(r: &Report, name: &str) -> Outcome {
    r.get(name)
        .unwrap_or_else(|| panic!("no {name} check in\n{r}"))
        .outcome
}

fn detail<'a>(r: &'a Report, name: &str) -> &'a str {
    &r.get(name)
        .unwrap_or_else(|| panic!("no {name} check in\n{r}"))
        .detail
}

/// Only `name` failed, and the report's last line says so.
fn only_failure(r: &Report, name: &str) {
    let failed: Vec<&str> = r.failures().map(|c| c.name).collect();
    assert_eq!(failed, vec![name], "{r}");
    assert!(!r.ok());
    assert!(
        r.to_string().contains("result: NOT VERIFIED (1 failed: "),
        "{r}"
    );
}

#[test]
fn a_signed_export_verifies_and_says_which_key() {
    let e = Export::new("ok");
    let r = e.verify(None);
    assert!(r.ok(), "{r}");
    let names: Vec<&str> = r.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "manifest",
            "format",
            "fields",
            "key",
            "signature",
            "file size",
            "sha256",
            "file name"
        ]
    );
    assert!(r.checks.iter().all(|c| c.outcome == Outcome::Pass), "{r}");
    assert!(
        detail(&r, "key").contains("not independently trusted"),
        "{r}"
    );
    assert_eq!(detail(&r, "file size"), "100000 bytes");
    assert!(r.to_string().ends_with("result: verified\n"), "{r}");

    let pem = e.key.public_key_pem();
    let r = e.verify(Some(&pem));
    assert!(r.ok(), "{r}");
    assert_eq!(
        detail(&r, "key"),
        format!("checked against --public-key (key_id {})", e.key.key_id())
    );
}

#[test]
fn one_flipped_byte_of_the_mp4_is_a_sha256_mismatch() {
    let e = Export::new("flip");
    let expected = e.json()["manifest"]["sha256"].as_str().unwrap().to_owned();
    let mut data = std::fs::read(&e.mp4).unwrap();
    data[54_321] ^= 0x01;
    std::fs::write(&e.mp4, &data).unwrap();
    let r = e.verify(None);
    only_failure(&r, "sha256");
    let found = evidence::hash_file(&e.mp4).unwrap().1;
    assert_eq!(
        detail(&r, "sha256"),
        format!("expected {expected} (manifest), found {found} (file)")
    );
    assert_eq!(outcome(&r, "file size"), Outcome::Pass);
}

#[test]
fn a_truncated_mp4_fails_size_and_hash_and_a_missing_one_fails_clearly() {
    let e = Export::new("trunc");
    let data = std::fs::read(&e.mp4).unwrap();
    std::fs::write(&e.mp4, &data[..99_999]).unwrap();
    let r = e.verify(None);
    assert_eq!(
        detail(&r, "file size"),
        "expected 100000 bytes (manifest), found 99999 bytes (file)"
    );
    assert_eq!(outcome(&r, "sha256"), Outcome::Fail);
    assert_eq!(r.failures().count(), 2, "{r}");

    std::fs::remove_file(&e.mp4).unwrap();
    let r = e.verify(None);
    assert!(detail(&r, "file size").starts_with("cannot open "), "{r}");
    assert!(!r.ok());
}

#[test]
fn a_renamed_copy_still_verifies_with_a_note() {
    let e = Export::new("rename");
    let copy = e.dir.join("evidence-item-17.mp4");
    std::fs::copy(&e.mp4, &copy).unwrap();
    let r = verify(&copy, &e.manifest, None);
    assert!(r.ok(), "{r}");
    assert_eq!(outcome(&r, "file name"), Outcome::Note);
    assert!(
        r.to_string()
            .contains("note file name: the manifest names \"0193a5c2.mp4\""),
        "{r}"
    );
}

#[test]
fn a_changed_manifest_value_fails_the_signature() {
    let e = Export::new("value");
    e.edit(|v| v["manifest"]["camera_id"] = "cam-2".into());
    let r = e.verify(None);
    only_failure(&r, "signature");
    assert!(
        detail(&r, "signature").contains("changed after signing"),
        "{r}"
    );

    // A value changed to match a tampered file fails the same way (the file checks then pass).
    let e = Export::new("value2");
    std::fs::write(&e.mp4, b"other").unwrap();
    let (size, hash) = evidence::hash_file(&e.mp4).unwrap();
    e.edit(|v| {
        v["manifest"]["file_size"] = size.into();
        v["manifest"]["sha256"] = hash.into();
    });
    only_failure(&e.verify(None), "signature");

    // Same text, another type: "audio": "false" is not false.
    let e = Export::new("type");
    e.edit(|v| v["manifest"]["audio"] = "false".into());
    let r = e.verify(None);
    assert_eq!(outcome(&r, "signature"), Outcome::Fail, "{r}");
    assert_eq!(outcome(&r, "fields"), Outcome::Fail, "{r}");
}

#[test]
fn an_added_or_removed_field_fails() {
    let e = Export::new("add");
    e.edit(|v| v["manifest"]["note"] = "approved by the chief".into());
    let r = e.verify(None);
    assert_eq!(outcome(&r, "signature"), Outcome::Fail, "{r}");
    assert!(detail(&r, "fields").contains("unknown field `note`"), "{r}");

    // `agency` is optional in the format, so adding one is caught by the signature alone.
    let e = Export::new("add_agency");
    e.edit(|v| v["manifest"]["agency"] = "ADF".into());
    only_failure(&e.verify(None), "signature");

    let e = Export::new("remove");
    e.edit(|v| {
        v["manifest"].as_object_mut().unwrap().remove("created_by");
    });
    let r = e.verify(None);
    assert_eq!(outcome(&r, "signature"), Outcome::Fail, "{r}");
    assert!(
        detail(&r, "fields").contains("missing field `created_by`"),
        "{r}"
    );

    // Outside the manifest object, where the signature does not reach: refused as such.
    let e = Export::new("top");
    e.edit(|v| v["comment"] = "verified by the lab".into());
    let r = e.verify(None);
    only_failure(&r, "manifest");
    assert!(
        detail(&r, "manifest").contains("unknown top-level fields"),
        "{r}"
    );
    assert!(detail(&r, "manifest").contains("\"comment\""), "{r}");
}

#[test]
fn a_duplicated_key_is_refused_even_when_the_last_value_is_the_signed_one() {
    let e = Export::new("dup");
    let text = std::fs::read_to_string(&e.manifest).unwrap();
    let text = text.replacen(
        "\"camera_id\": \"cam-1\"",
        "\"camera_id\": \"cam-9\", \"camera_id\": \"cam-1\"",
        1,
    );
    std::fs::write(&e.manifest, text).unwrap();
    let r = e.verify(None);
    only_failure(&r, "manifest");
    assert!(
        detail(&r, "manifest").contains("duplicate key \"camera_id\""),
        "{r}"
    );
    assert_eq!(r.checks.len(), 1, "nothing else is checked: {r}");
}

#[test]
fn layout_does_not_matter() {
    let e = Export::new("layout");
    let v = e.json();
    // Compact, reordered (the manifest's keys reversed, signature first), CRLF, extra spaces.
    let m = v["manifest"].as_object().unwrap();
    let mut fields: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("  {} :\t{}", serde_json::to_string(k).unwrap(), v))
        .collect();
    fields.reverse();
    let text = format!(
        "\r\n{{ \"signature\" : {} ,\r\n\"manifest\":{{\r\n{}\r\n}} }}  \n",
        v["signature"],
        fields.join(",\r\n")
    );
    std::fs::write(&e.manifest, &text).unwrap();
    let r = e.verify(None);
    assert!(r.ok(), "{r}\n{text}");
    std::fs::write(&e.manifest, serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(e.verify(Some(&e.key.public_key_pem())).ok());
    // Escapes are the same string: "\u0063am-1" is "cam-1".
    let text = std::fs::read_to_string(&e.manifest)
        .unwrap()
        .replace("\"cam-1\"", "\"\\u0063am-1\"");
    std::fs::write(&e.manifest, text).unwrap();
    assert!(e.verify(None).ok());
}

#[test]
fn the_wrong_public_key_fails_and_says_so() {
    let e = Export::new("wrongkey");
    let other = SigningKey::generate();
    let r = e.verify(Some(&other.public_key_pem()));
    assert_eq!(outcome(&r, "key"), Outcome::Fail, "{r}");
    assert_eq!(
        detail(&r, "key"),
        format!(
            "checked against --public-key (key_id {}): the manifest was signed with another key \
             (key_id {})",
            other.key_id(),
            e.key.key_id()
        )
    );
    assert_eq!(outcome(&r, "signature"), Outcome::Fail, "{r}");
    assert!(
        r.to_string()
            .contains("FAIL key: checked against --public-key"),
        "{r}"
    );

    // A forger who re-signs with their own key and embeds it: fine by itself (the report says the
    // key is only the manifest's own), caught by the real public key.
    let mut signed: SignedManifest = serde_json::from_value(e.json()).unwrap();
    signed.manifest.camera_id = "cam-2".into();
    let forged = SignedManifest::sign(signed.manifest, &other).unwrap();
    std::fs::write(&e.manifest, forged.to_json_pretty().unwrap()).unwrap();
    let r = e.verify(None);
    assert!(r.ok(), "{r}");
    assert!(
        detail(&r, "key").contains("not independently trusted"),
        "{r}"
    );
    let r = e.verify(Some(&e.key.public_key_pem()));
    assert_eq!(outcome(&r, "key"), Outcome::Fail, "{r}");
    assert_eq!(outcome(&r, "signature"), Outcome::Fail, "{r}");

    // Not a key at all.
    let r = e.verify(Some("hello"));
    assert!(
        detail(&r, "key").starts_with("--public-key: not an Ed25519 public key"),
        "{r}"
    );
    assert_eq!(detail(&r, "signature"), "not checked: no usable key");
}

#[test]
fn an_inconsistent_signature_block_fails() {
    let e = Export::new("sigblock");
    e.edit(|v| v["signature"]["key_id"] = "0000000000000000".into());
    let r = e.verify(None);
    only_failure(&r, "key");
    assert!(
        detail(&r, "key").contains("key_id says \"0000000000000000\""),
        "{r}"
    );
    // The same with the right --public-key (found by the export_manifest fuzz body).
    let r = e.verify(Some(&e.key.public_key_pem()));
    only_failure(&r, "key");
    let d = detail(&r, "key");
    assert!(d.starts_with("checked against --public-key"), "{r}");
    assert!(d.contains("key_id says \"0000000000000000\""), "{r}");

    let e = Export::new("alg");
    e.edit(|v| v["signature"]["algorithm"] = "RS256".into());
    let r = e.verify(None);
    only_failure(&r, "signature");
    assert_eq!(
        detail(&r, "signature"),
        "expected algorithm Ed25519, found \"RS256\""
    );

    let e = Export::new("sigval");
    e.edit(|v| v["signature"]["value"] = "AAAA".into());
    assert_eq!(
        detail(&e.verify(None), "signature"),
        "value is 3 bytes, not 64"
    );
}

#[test]
fn an_unknown_format_fails() {
    let e = Export::new("format");
    e.edit(|v| v["manifest"]["format"] = "vantage-export/2".into());
    let r = e.verify(None);
    assert_eq!(
        detail(&r, "format"),
        "expected vantage-export/1, found \"vantage-export/2\""
    );
    assert_eq!(outcome(&r, "signature"), Outcome::Fail);
    assert_eq!(outcome(&r, "fields"), Outcome::Pass, "{r}");
}

#[test]
fn garbage_manifests_fail_cleanly() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (
            b"{\"manifest\": 1}",
            "manifest is not an object, no signature",
        ),
        (b"{\"manifest\": {}, \"signature\": {}}", ""),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (
            b"{\"manifest\": {\"file_size\": 1.5}, \"signature\": {}}",
            "",
        ),
        (&[b'['; 5000], "not valid JSON"),
    ];
    for (bytes, want) in cases {
        let (r, _) = verify_manifest(bytes, None);
        assert!(!r.ok(), "{bytes:?}: {r}");
        assert!(r.to_string().contains(want), "{want}: {r}");
    }
    let big = vec![b' '; evidence::MAX_MANIFEST_BYTES as usize + 1];
    let (r, m) = verify_manifest(&big, None);
    assert!(m.is_none());
    assert!(
        detail(&r, "manifest").starts_with("more than 1048576 bytes"),
        "{r}"
    );

    let e = Export::new("garbage");
    std::fs::write(&e.manifest, &big).unwrap();
    assert!(detail(&e.verify(None), "manifest").starts_with("more than"));
    let r = verify(&e.mp4, Path::new("/nonexistent/m.json"), None);
    assert!(
        detail(&r, "manifest").starts_with("cannot open /nonexistent/m.json"),
        "{r}"
    );
    assert!(
        r.to_string()
            .ends_with("result: NOT VERIFIED (1 failed: manifest)\n"),
        "{r}"
    );
}
