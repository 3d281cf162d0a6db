//! Scanning arbitrary bytes as a recording segment never panics, and what it reports is
//! consistent: fragments lie in order inside the valid prefix, which lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = media::scan::scan_bytes(data);
    assert_eq!(s.total_len, data.len() as u64);
    assert!(s.valid_len <= data.len() as u64);
    assert!(s.init_len <= s.valid_len);
    if s.init_len == 0 {
        assert!(s.fragments.is_empty());
        assert_eq!(s.valid_len, 0);
    }
    let mut pos = s.init_len;
    for f in &s.fragments {
        assert!(f.offset >= pos);
        assert!(f.samples > 0);
        pos = f.offset + f.len;
    }
    assert_eq!(
        s.fragments.last().map_or(s.init_len, |f| f.offset + f.len),
        s.valid_len
    );
    let _ = (s.start_90k(), s.end_90k());
    // Scanning the valid prefix again finds the same thing.
    let again = media::scan::scan_bytes(&data[..s.valid_len as usize]);
    assert_eq!(again.fragments, s.fragments);
    assert_eq!(again.valid_len, s.valid_len);
});
