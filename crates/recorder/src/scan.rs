//! Segment files on disk: the fMP4 reader ([`media::scan`], re-exported here) over a file, and
//! cutting a torn file back to its last complete fragment (recovery).

#![deny(clippy::indexing_slicing)]

pub use media::scan::{FragmentInfo, MAX_META_BOX_LEN, Scan, Source, scan_bytes, scan_source};

use base::{Error, ErrorKind, bail};
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Scans a segment file, reading only box headers and the `moov`/`moof` bodies (media payloads
/// are skipped), so large files are cheap. Fails only on I/O errors.
pub fn scan_file(path: &Path) -> Result<Scan, Error> {
    let file =
        File::open(path).map_err(|e| io_err(e).context(format!("scanning {}", path.display())))?;
    scan_opened(&file, path)
}

/// [`scan_file`] of a file already open (`path` names it in errors), for a reader that goes on
/// reading the fragments through the same handle.
pub fn scan_opened(file: &File, path: &Path) -> Result<Scan, Error> {
    let ctx = |e: std::io::Error| io_err(e).context(format!("scanning {}", path.display()));
    let len = file.metadata().map_err(ctx)?.len();
    scan_source(&mut FileSource { file, len }).map_err(ctx)
}

/// Cuts the file at `path` to `scan.valid_len` (and syncs it) when it holds more than that.
/// Returns whether it truncated. Fails with `FailedPrecondition`, without truncating, if the
/// file's length is no longer `scan.total_len` (it changed since the scan).
pub fn truncate_to_valid(path: &Path, scan: &Scan) -> Result<bool, Error> {
    if scan.total_len <= scan.valid_len {
        return Ok(false);
    }
    let ctx = |e: std::io::Error| io_err(e).context(format!("truncating {}", path.display()));
    let file = OpenOptions::new().write(true).open(path).map_err(ctx)?;
    let len = file.metadata().map_err(ctx)?.len();
    if len != scan.total_len {
        bail!(
            FailedPrecondition,
            "truncating {}: file is {len} bytes, scanned {}",
            path.display(),
            scan.total_len
        );
    }
    file.set_len(scan.valid_len).map_err(ctx)?;
    file.sync_data().map_err(ctx)?;
    Ok(true)
}

fn io_err(e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, e.to_string())
}

/// A file as a [`Source`].
struct FileSource<'a> {
    file: &'a File,
    len: u64,
}

impl Source for FileSource<'_> {
    type Err = std::io::Error;

    fn size(&self) -> u64 {
        self.len
    }

    fn read(&mut self, off: u64, len: usize) -> Result<Cow<'_, [u8]>, Self::Err> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, off)?;
        Ok(Cow::Owned(buf))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;
    use media::fmp4::{Sample, fragment, init_segment};
    use media::{Codec, VideoParams, split_access_units};

    /// A segment file of `n` fragments of `per_gop` frames of the H.264 fixture, and the
    /// fragments a scan reports.
    fn segment(_codec: Codec, n: usize, per_gop: usize) -> (Vec<u8>, u64, Vec<FragmentInfo>) {
        let aus = split_access_units(
            Codec::H264,
            include_bytes!("../../../fixtures/clips/h264_a.h264"),
        );
        let params = VideoParams::from_key_access_unit(Codec::H264, &aus[0].data, 1).unwrap();
        let mut out = init_segment(&params).unwrap();
        let init_len = out.len() as u64;
        let keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
        let mut fragments = Vec::new();
        let mut t = 1_000_000u64;
        for (f, &k) in keys.iter().take(n).enumerate() {
            let samples: Vec<Sample> = aus[k..k + per_gop]
                .iter()
                .map(|au| Sample {
                    data: &au.data,
                    duration: 3600,
                    is_key: au.is_key,
                })
                .collect();
            let frag = fragment(f as u32 + 1, t, &samples).unwrap();
            out.extend_from_slice(&frag);
            t += 3600 * per_gop as u64;
            fragments = scan_bytes(&out).fragments;
        }
        (out, init_len, fragments)
    }

    fn end(f: &FragmentInfo) -> u64 {
        f.offset + f.len
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "vantage-scan-{}-{name}-{:?}.mp4",
            std::process::id(),
            std::thread::current().id()
        ))
    }

    /// The file scan agrees with the byte scan at every 97th truncation point.
    #[test]
    fn file_scan_matches_the_byte_scan() {
        let (buf, _, expected) = segment(Codec::H264, 3, 5);
        assert_eq!(expected.len(), 3);
        let p = temp_path("file");
        for cut in (0..=buf.len()).filter(|c| c % 97 == 0 || *c == buf.len()) {
            std::fs::write(&p, &buf[..cut]).unwrap();
            assert_eq!(
                scan_file(&p).unwrap(),
                scan_bytes(&buf[..cut]),
                "cut at {cut}"
            );
        }
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn truncate_to_valid_drops_the_partial_fragment() {
        let (buf, _, expected) = segment(Codec::H264, 3, 3);
        let cut = (expected[2].offset + expected[2].len / 2) as usize;
        let p = temp_path("truncate");
        std::fs::write(&p, &buf[..cut]).unwrap();
        let before = scan_file(&p).unwrap();
        assert_eq!(before.valid_len, end(&expected[1]));
        assert_eq!(before.total_len, cut as u64);

        // A file that changed since the scan is left alone.
        std::fs::write(&p, &buf[..cut + 1]).unwrap();
        let e = truncate_to_valid(&p, &before).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), cut as u64 + 1);
        std::fs::write(&p, &buf[..cut]).unwrap();

        assert!(truncate_to_valid(&p, &before).unwrap());
        let after = scan_file(&p).unwrap();
        assert_eq!(after.valid_len, after.total_len);
        assert_eq!(after.total_len, end(&expected[1]));
        assert_eq!(after.fragments, expected[..2]);
        assert_eq!(after.fragments, before.fragments);
        assert!(!truncate_to_valid(&p, &after).unwrap());
        std::fs::remove_file(&p).unwrap();

        let missing = scan_file(&p).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert!(missing.message().contains("vantage-scan-"), "{missing}");
    }
}
