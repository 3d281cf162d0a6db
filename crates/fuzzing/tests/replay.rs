//! Every fuzz target's body on stable: its committed seeds (`fuzz/seeds/<target>/`) and a few
//! thousand deterministic mutations of them. One test per target, so a failure names it.

use fuzzing::replay::replay;

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let r = replay(stringify!($name), fuzzing::$name);
                eprintln!("{}: {} seeds, {} generated inputs", stringify!($name), r.seeds, r.generated);
            }
        )*

        /// The list above, `fuzzing::TARGETS` and `fuzz/fuzz_targets/` name the same targets, every
        /// libFuzzer target calls its body here, and every target has seeds.
        #[test]
        fn every_target_is_replayed() {
            let here = [$(stringify!($name)),*];
            let lib: Vec<&str> = fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(here.to_vec(), lib);
            for name in here {
                assert!(!fuzzing::replay::load_seeds(name).is_empty(), "{name} has no seeds");
                // The libFuzzer target runs this same body.
                let src = fuzzing::replay::seeds_dir().join(format!("../fuzz_targets/{name}.rs"));
                let src = std::fs::read_to_string(&src).expect("fuzz target source");
                assert!(src.contains(&format!("fuzzing::{name}(")), "{name}.rs: {src}");
            }
            let mut files: Vec<String> = std::fs::read_dir(fuzzing::replay::seeds_dir().join("../fuzz_targets"))
                .expect("fuzz/fuzz_targets")
                .map(|e| e.expect("entry").file_name().to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            files.sort();
            let mut sorted = here.to_vec();
            sorted.sort();
            assert_eq!(files, sorted, "a fuzz target without a replay test, or the reverse");
        }
    };
}

targets!(
    annexb_split,
    sps_parse,
    rtsp_request,
    sdp_offer,
    config_load,
    vms_json,
    vms_soap,
    fmp4_scan,
    adts_parse,
    mp4_read_init,
    mp4_read_fragment,
    export_manifest,
    http_range,
    jwt_verify,
);

/// The `jwt_verify` seeds reach the accepting branch: the valid tokens verify (and the expired and
/// `alg: none` ones do not), so the target's invariants on accepted tokens are exercised.
#[test]
fn jwt_seeds_that_should_verify_do() {
    let dir = fuzzing::replay::seeds_dir().join("jwt_verify");
    for (seed, ok) in [
        ("local.bin", true),
        ("rs256_pem.bin", true),
        ("rs256_jwks.bin", true),
        ("local_expired.bin", false),
        ("alg_none.bin", false),
    ] {
        let data = std::fs::read(dir.join(seed)).expect("seed");
        let (token, jwks) = match data.iter().position(|b| *b == 0) {
            Some(i) => (&data[..i], Some(&data[i + 1..])),
            None => (&data[..], None),
        };
        let v = fuzzing::jwt_verifier();
        if let Some(doc) = jwks {
            assert_eq!(v.external[1].set_jwks(doc).expect("jwks"), 1);
        }
        let r = v.verify(std::str::from_utf8(token).expect("text"), fuzzing::JWT_NOW);
        assert_eq!(r.is_ok(), ok, "{seed}: {r:?}");
    }
}
