//! XProtect REST/IDP JSON parsers: must never panic, whatever the gateway sends.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vms::parse_cameras(data);
    let _ = vms::parse_hardware(data);
    let _ = vms::parse_recording_servers(data);
    let _ = vms::parse_camera_groups(data);
    let _ = vms::parse_rest_error(data);
    let _ = vms::parse_token_response(data);
    let _ = vms::parse_well_known_uris(data);
    let _ = vms::parse_openid_configuration(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = vms::parse_timestamp(s);
        let _ = vms::parse_gis_point(s);
    }
});
