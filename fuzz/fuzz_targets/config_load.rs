//! Configuration files and VANTAGE__* overrides come from administrators: every input gets a list
//! of problems or a configuration, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (doc, env) = text.split_once("\n--env\n").unwrap_or((text, ""));
    let env = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let _ = settings::load_str(doc, env);
});
