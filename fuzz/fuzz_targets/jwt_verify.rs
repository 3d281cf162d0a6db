//! A bearer token (and an identity provider's JWKS document) never panics the verifier; what it
//! accepts names a configured issuer and a known role; its refusals never repeat the token.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::jwt_verify`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/jwt_verify/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::jwt_verify(data));
