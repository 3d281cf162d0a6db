//! XProtect SOAP answers (ServerCommandService Login, RecorderCommandService SequencesGet) and
//! timestamps: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = vms::parse_login_result(&s);
    let _ = vms::parse_sequences(&s);
    let _ = vms::parse_timestamp(&s);
});
