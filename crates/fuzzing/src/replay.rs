//! Runs a target's body over its committed seeds (`fuzz/seeds/<target>/`) and over inputs the
//! [`mutate`](crate::mutate) module derives from them, reporting the input that failed.
//!
//! Environment (for a longer local run; CI uses the defaults, which are deterministic):
//! - `VANTAGE_FUZZ_MUTATIONS`: generated inputs per target (default [`DEFAULT_MUTATIONS`]);
//! - `VANTAGE_FUZZ_SEED`: mixed into the generator's seed (default 0).

use crate::mutate::{Rng, mutate};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Generated inputs per target in `cargo test`.
pub const DEFAULT_MUTATIONS: usize = 5000;

/// The committed seed corpora, one folder per target.
pub fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

/// A target's seeds, sorted by file name (so runs are reproducible).
pub fn load_seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seeds_dir().join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read seed folder {}: {e}", dir.display()));
    let mut seeds: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.expect("seed folder entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read seed {}: {e}", path.display()));
            (name, data)
        })
        .collect();
    seeds.sort();
    seeds
}

/// What a replay ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
    pub seeds: usize,
    pub generated: usize,
}

fn env_usize(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `body` on every seed of `target`, then on generated inputs. Panics (failing the test) with
/// the seed name or the generated input's number and the path of a file holding the input.
pub fn replay(target: &str, body: fn(&[u8])) -> Replayed {
    let seeds = load_seeds(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for (name, data) in &seeds {
        check(target, body, data, &format!("seed {name}"));
    }
    let n = env_usize("VANTAGE_FUZZ_MUTATIONS").map_or(DEFAULT_MUTATIONS, |n| n as usize);
    let mut rng = Rng::from_name(target);
    if let Some(s) = env_usize("VANTAGE_FUZZ_SEED") {
        rng = Rng::new(rng.next_u64() ^ s);
    }
    let all: Vec<&[u8]> = seeds.iter().map(|(_, d)| &d[..]).collect();
    for i in 0..n {
        let (name, base) = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &all);
        check(
            target,
            body,
            &input,
            &format!("generated input {i} (from seed {name})"),
        );
    }
    Replayed {
        seeds: seeds.len(),
        generated: n,
    }
}

fn check(target: &str, body: fn(&[u8]), data: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| body(data))).is_ok() {
        return;
    }
    let path = std::env::temp_dir().join(format!(
        "vantage-fuzz-{target}-{:016x}.bin",
        crate::mutate::fnv1a(data)
    ));
    let saved = match std::fs::write(&path, data) {
        Ok(()) => format!("saved to {}", path.display()),
        Err(e) => format!("could not save it to {}: {e}", path.display()),
    };
    panic!(
        "{target} failed on {what} ({} bytes, {saved}); add it to fuzz/seeds/{target}/ once \
         fixed, and reproduce with `cargo fuzz run {target} <file>` or \
         `cargo test -p fuzzing --test replay {target}`",
        data.len()
    );
}
