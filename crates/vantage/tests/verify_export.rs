//! `vantage verify-export` as a user runs it: exit codes and the report's lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use evidence::{FORMAT, Manifest, SignedManifest, SigningKey};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&Path]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_vantage"))
        .arg("verify-export")
        .args(args)
        .output()
        .expect("run vantage");
    (
        status.code().expect("exit code"),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn lines(out: &str) -> Vec<&str> {
    out.lines().collect()
}

#[test]
fn verify_export_exit_codes_and_report() {
    let dir =
        Dir(std::env::temp_dir().join(format!("vantage-verify-export-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let d = &dir.0;

    let key = SigningKey::load_or_create(&d.join("export-signing-key.pem")).unwrap();
    let mp4 = d.join("e1.mp4");
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    std::fs::write(&mp4, &data).unwrap();
    let (size, sha256) = evidence::hash_file(&mp4).unwrap();
    let signed = SignedManifest::sign(
        Manifest {
            format: FORMAT.into(),
            export_id: "e1".into(),
            camera_id: "cam-1".into(),
            camera_name: "Lobby".into(),
            agency: Some("ADF".into()),
            start_time: "2026-11-21T08:00:00Z".into(),
            end_time: "2026-11-21T08:01:00Z".into(),
            file_name: "e1.mp4".into(),
            file_size: size,
            sha256: sha256.clone(),
            video_frames: 1500,
            audio: true,
            created_by: "alice".into(),
            created_at: "2026-11-21T09:00:00Z".into(),
            vantage_version: env!("CARGO_PKG_VERSION").into(),
        },
        &key,
    )
    .unwrap();
    let manifest = d.join("e1.manifest.json");
    std::fs::write(&manifest, signed.to_json_pretty().unwrap()).unwrap();
    let pem = d.join("public.pem");
    std::fs::write(&pem, key.public_key_pem()).unwrap();
    let id = key.key_id();

    // Everything matches, with the node's public key.
    let (code, out, err) = run(&[&mp4, &manifest, Path::new("--public-key"), &pem]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        lines(&out),
        [
            "ok   manifest: ".to_owned()
                + &std::fs::metadata(&manifest).unwrap().len().to_string()
                + " bytes of JSON",
            "ok   format: vantage-export/1".to_owned(),
            "ok   fields: 15 fields, all well-formed".to_owned(),
            format!("ok   key: checked against --public-key (key_id {id})"),
            format!("ok   signature: valid Ed25519 signature of the manifest by key_id {id}"),
            "ok   file size: 5000 bytes".to_owned(),
            format!("ok   sha256: {sha256}"),
            "ok   file name: e1.mp4".to_owned(),
            "result: verified".to_owned(),
        ]
    );
    assert_eq!(err, "");

    // Without it: still 0, and the report says whose key it was.
    let (code, out, _) = run(&[&mp4, &manifest]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "ok   key: the manifest's own key (key_id {id}; not independently trusted"
        )),
        "{out}"
    );

    // Another node's key: exit 1, and the key line says so.
    let other = d.join("other.pem");
    let other_key = SigningKey::generate();
    std::fs::write(&other, other_key.public_key_pem()).unwrap();
    let (code, out, _) = run(&[&mp4, &manifest, Path::new("--public-key"), &other]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL key: checked against --public-key (key_id {}): the manifest was signed with \
             another key (key_id {id})",
            other_key.key_id()
        )),
        "{out}"
    );
    assert!(out.contains("FAIL signature: "), "{out}");
    assert!(
        out.ends_with("result: NOT VERIFIED (2 failed: key, signature)\n"),
        "{out}"
    );

    // One byte of the MP4 changed: exit 1, expected vs found.
    let mut tampered = data.clone();
    tampered[1234] ^= 0x80;
    std::fs::write(&mp4, &tampered).unwrap();
    let (_, found) = evidence::hash_file(&mp4).unwrap();
    let (code, out, _) = run(&[&mp4, &manifest, Path::new("--public-key"), &pem]);
    assert_eq!(code, 1, "{out}");
    assert!(
        lines(&out).contains(
            &format!("FAIL sha256: expected {sha256} (manifest), found {found} (file)").as_str()
        ),
        "{out}"
    );
    assert!(
        out.ends_with("result: NOT VERIFIED (1 failed: sha256)\n"),
        "{out}"
    );
    std::fs::write(&mp4, &data).unwrap();

    // A manifest value changed: exit 1, signature.
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"Lobby\"", "\"Vault\"")).unwrap();
    let (code, out, _) = run(&[&mp4, &manifest]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.ends_with("result: NOT VERIFIED (1 failed: signature)\n"),
        "{out}"
    );
    std::fs::write(&manifest, &text).unwrap();

    // An unusable key file: exit 2 with a message; a missing MP4: exit 1.
    let (code, out, err) = run(&[&mp4, &manifest, Path::new("--public-key"), &mp4]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.starts_with("vantage verify-export: --public-key "),
        "{err}"
    );
    assert!(err.contains("not an Ed25519 public key"), "{err}");
    let (code, out, _) = run(&[&d.join("missing.mp4"), &manifest]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL file size: cannot open "), "{out}");

    // Back to the original: verified again.
    assert_eq!(
        run(&[&mp4, &manifest, Path::new("--public-key"), &pem]).0,
        0
    );
}
