//! Start-up recovery (design 0006, "Crash safety"). Runs before any writer starts, so nothing else
//! touches the recordings directory meanwhile.
//!
//! 1. `deleting` rows: the file is removed (if still there) and the row deleted.
//! 2. `writing` rows (a crash or power cut during the segment): the file is scanned, cut back to
//!    its last complete fragment and the row completed with the size, end and key frames found in
//!    the file. A row whose file is missing or holds no complete fragment is deleted (with the file).
//! 3. Recent `complete` rows (the last `verify_window` of each camera): a missing file deletes
//!    the row; a file shorter than the row says is re-scanned and the row corrected. Older rows
//!    were completed after `fdatasync` and are trusted.
//! 4. Unknown files: in each camera directory, the day directories from the day of the camera's
//!    newest indexed segment on (all of them when the camera has none) are listed, and `.mp4`
//!    files the index does not know are scanned and indexed as `complete` (the index lost the
//!    row, e.g. SQLite commits lost in a power cut). Files without a complete fragment are removed;
//!    other files are moved to `lost+found/`.
//!
//! The index therefore never points at missing bytes, and the directory walk is bounded by the
//! days a crash can have touched, not by the size of the archive.

#![deny(clippy::indexing_slicing)]

use crate::index::{Index, Keyframe, NewSegment, Segment, SegmentState};
use crate::retention::DAY_MS;
use crate::scan::{self, Scan};
use crate::writer::{camera_dir, day_dir, sync_dir};
use crate::{TICKS_PER_MS, ticks_to_ms};
use base::{Error, ErrorKind, ResultExt};
use std::collections::HashSet;
use std::path::Path;

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// `deleting` rows finished.
    pub deletions_finished: u64,
    /// `writing` rows completed from their files.
    pub segments_recovered: u64,
    /// Bytes cut from the ends of files (torn fragments).
    pub bytes_truncated: u64,
    /// Rows removed because their file was missing or held no complete fragment.
    pub rows_removed: u64,
    /// `complete` rows whose file was shorter than recorded, corrected.
    pub rows_corrected: u64,
    /// Files the index did not know, now indexed.
    pub files_indexed: u64,
    /// Files the index did not know and that held no usable video: empty ones removed, others
    /// moved to `lost+found/`.
    pub files_removed: u64,
    pub files_quarantined: u64,
    /// Directories listed while looking for unknown files.
    pub dirs_listed: u64,
}

/// Recovers the recordings directory `dir` and its index. Rows of the last `verify_window_ms`
/// of each camera (before its newest segment) have their files checked.
pub fn recover(dir: &Path, index: &Index, verify_window_ms: i64) -> Result<RecoveryReport, Error> {
    let mut r = RecoveryReport::default();
    for s in index.segments_in_state(SegmentState::Deleting)? {
        remove_file(&dir.join(&s.path))?;
        index.delete_segment(s.id)?;
        r.deletions_finished += 1;
    }
    for s in index.segments_in_state(SegmentState::Writing)? {
        recover_row(dir, index, &s, &mut r)?;
    }
    let cameras: Vec<String> = index
        .camera_usage()?
        .into_iter()
        .map(|u| u.camera_id)
        .collect();
    for cam in &cameras {
        verify_recent(dir, index, cam, verify_window_ms, &mut r)?;
    }
    reconcile_unknown(dir, index, &mut r)?;
    Ok(r)
}

fn remove_file(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::new(
            ErrorKind::Unavailable,
            format!("removing {}: {e}", path.display()),
        )),
    }
}

/// The key frames of a scanned file: the fragments that start with a key frame, at their
/// wall-clock time (from their `prft`: the segment's start plus the fragment's time in the file;
/// in files written before `prft`s, the `tfdt`).
fn keyframes(scan: &Scan) -> Vec<Keyframe> {
    scan.fragments
        .iter()
        .filter(|f| f.starts_with_key)
        .filter_map(|f| {
            Some(Keyframe {
                time_90k: i64::try_from(f.wall_90k).ok()?,
                byte_offset: f.offset,
            })
        })
        .collect()
}

/// Scans a row's file, cuts it back to its complete fragments and completes the row, or removes
/// both when nothing usable is left.
fn recover_row(
    dir: &Path,
    index: &Index,
    s: &Segment,
    r: &mut RecoveryReport,
) -> Result<(), Error> {
    let path = dir.join(&s.path);
    let scanned = match scan::scan_file(&path) {
        Ok(sc) => Some(sc),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let usable = scanned.filter(|sc| !sc.fragments.is_empty());
    let Some(sc) = usable else {
        remove_file(&path)?;
        index.delete_segment(s.id)?;
        r.rows_removed += 1;
        return Ok(());
    };
    if scan::truncate_to_valid(&path, &sc)? {
        r.bytes_truncated += sc.total_len - sc.valid_len;
    }
    let end_90k = sc
        .end_90k()
        .and_then(|e| i64::try_from(e).ok())
        .unwrap_or(s.start_90k)
        .max(s.start_90k);
    let end_ms = s.start_wall_ms + (end_90k - s.start_90k) / TICKS_PER_MS;
    index.recover_segment(s.id, end_90k, end_ms, sc.valid_len, &keyframes(&sc))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    r.segments_recovered += 1;
    Ok(())
}

fn verify_recent(
    dir: &Path,
    index: &Index,
    camera_id: &str,
    window_ms: i64,
    r: &mut RecoveryReport,
) -> Result<(), Error> {
    let Some(latest) = index.latest_segment(camera_id)? else {
        return Ok(());
    };
    let since = latest.start_wall_ms.saturating_sub(window_ms);
    for s in index.segments(camera_id, since, i64::MAX)? {
        let path = dir.join(&s.path);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() >= s.bytes => {}
            Ok(_) => {
                // Shorter than recorded: believe the file.
                recover_row(dir, index, &s, r)?;
                r.rows_corrected += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                index.delete_segment(s.id)?;
                r.rows_removed += 1;
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("checking {}: {e}", path.display()),
                ));
            }
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<(String, std::fs::FileType)>, Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("listing {}: {e}", dir.display()),
            ));
        }
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.err_kind(
            ErrorKind::Unavailable,
            format_args!("listing {}", dir.display()),
        )?;
        let Ok(name) = ent.file_name().into_string() else {
            continue;
        };
        let ty = ent.file_type().err_kind(
            ErrorKind::Unavailable,
            format_args!("listing {}", dir.display()),
        )?;
        out.push((name, ty));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn reconcile_unknown(dir: &Path, index: &Index, r: &mut RecoveryReport) -> Result<(), Error> {
    let known_cameras: Vec<String> = index
        .camera_usage()?
        .into_iter()
        .map(|u| u.camera_id)
        .collect();
    r.dirs_listed += 1;
    for (cam_dir, ty) in list(dir)? {
        if !ty.is_dir() || cam_dir == "lost+found" {
            continue;
        }
        // Which camera: one whose rows live here, else the directory name (the id when it is
        // a plain id, which is the common case).
        let camera_id = match index.camera_of_dir(&cam_dir)? {
            Some(c) => c,
            None => known_cameras
                .iter()
                .find(|c| camera_dir(c) == cam_dir)
                .cloned()
                .unwrap_or_else(|| cam_dir.clone()),
        };
        let latest = index.latest_segment(&camera_id)?;
        let from_day = latest.as_ref().map(|s| day_dir(s.start_wall_ms));
        // The paths the index holds for those days, in one query (a day is up to 1,440 files;
        // a lookup per file would be that many queries per camera). Files not in the set are
        // looked up one by one before being adopted.
        let known: HashSet<String> = match &latest {
            // From the start (UTC midnight) of the first day directory listed.
            Some(s) => index
                .segments(
                    &camera_id,
                    s.start_wall_ms - s.start_wall_ms.rem_euclid(DAY_MS),
                    i64::MAX,
                )?
                .into_iter()
                .map(|s| s.path)
                .collect(),
            None => HashSet::new(),
        };
        let cam_path = dir.join(&cam_dir);
        r.dirs_listed += 1;
        for (day, ty) in list(&cam_path)? {
            if !ty.is_dir() || from_day.as_ref().is_some_and(|f| day < *f) {
                continue;
            }
            let day_path = cam_path.join(&day);
            r.dirs_listed += 1;
            let files = list(&day_path)?;
            for (name, ty) in files {
                if !ty.is_file() || !name.ends_with(".mp4") {
                    continue;
                }
                let rel = format!("{cam_dir}/{day}/{name}");
                if known.contains(&rel) || index.has_path(&rel)? {
                    continue;
                }
                adopt(dir, index, &camera_id, &rel, r)?;
            }
        }
    }
    Ok(())
}

/// Indexes a file the index does not know, or removes/quarantines it.
fn adopt(
    dir: &Path,
    index: &Index,
    camera_id: &str,
    rel: &str,
    r: &mut RecoveryReport,
) -> Result<(), Error> {
    let path = dir.join(rel);
    let sc = scan::scan_file(&path)?;
    let (Some(start), Some(end), Some(codec)) = (sc.start_90k(), sc.end_90k(), sc.codec.clone())
    else {
        // Ours but torn before its first fragment completed (it starts like our files): remove.
        // Anything else is not ours to delete.
        if sc.total_len == 0 || sc.init_len > 0 || starts_with_ftyp(&path) {
            remove_file(&path)?;
            r.files_removed += 1;
        } else {
            quarantine(dir, rel)?;
            r.files_quarantined += 1;
        }
        return Ok(());
    };
    let (Ok(start), Ok(end)) = (i64::try_from(start), i64::try_from(end)) else {
        quarantine(dir, rel)?;
        r.files_quarantined += 1;
        return Ok(());
    };
    if (end - start) / TICKS_PER_MS > crate::index::MAX_SEGMENT_MS {
        // Not one of our segments (they are at most 60 s); the index cannot hold it.
        quarantine(dir, rel)?;
        r.files_quarantined += 1;
        return Ok(());
    }
    if scan::truncate_to_valid(&path, &sc)? {
        r.bytes_truncated += sc.total_len - sc.valid_len;
    }
    let seg = NewSegment {
        camera_id: camera_id.to_owned(),
        run_id: start,
        start_90k: start,
        start_wall_ms: ticks_to_ms(start),
        path: rel.to_owned(),
        codec,
        params_version: 0,
        // Not in the index any more; the file's init segment still says.
        codec_string: String::new(),
        width: 0,
        height: 0,
    };
    index.insert_recovered(&seg, end, ticks_to_ms(end), sc.valid_len, &keyframes(&sc))?;
    r.files_indexed += 1;
    Ok(())
}

fn starts_with_ftyp(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head[4..8] == b"ftyp")
}

fn quarantine(dir: &Path, rel: &str) -> Result<(), Error> {
    let lf = dir.join("lost+found");
    std::fs::create_dir_all(&lf).err_kind(
        ErrorKind::Unavailable,
        format_args!("creating {}", lf.display()),
    )?;
    let to = lf.join(rel.replace('/', "_"));
    std::fs::rename(dir.join(rel), &to).err_kind(
        ErrorKind::Unavailable,
        format_args!("moving {rel} to {}", to.display()),
    )?;
    tracing::warn!("recordings: {rel} holds no usable video; moved to lost+found");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;
    use crate::index::{Index, NewSegment, SegmentState};
    use crate::segmenter::{Action, Segmenter, SegmenterConfig};
    use crate::testutil::{TempDir, clip};
    use media::{Codec, Frame};
    use std::time::{Duration, UNIX_EPOCH};

    const T0_MS: i64 = 1_700_000_000_000;

    /// `gops` GOPs (2 s each) of the fixture clip as one segment file: (bytes, fragment ends).
    fn segment_bytes(gops: usize) -> (Vec<u8>, Vec<u64>) {
        let (frames, params) = clip("h264_a.h264", Codec::H264);
        let cfg = SegmenterConfig {
            rotation: crate::rotation::RotationConfig {
                period: 3600 * crate::TICKS_PER_SEC,
            },
            ..SegmenterConfig::default()
        };
        let mut seg = Segmenter::new("cam", cfg);
        let mut out = Vec::new();
        for n in 0..(gops * 50 + 1) {
            let (data, is_key) = frames[n % frames.len()].clone();
            seg.push(
                Frame {
                    pts: n as i64 * 3600,
                    received: UNIX_EPOCH + Duration::from_millis(T0_MS as u64 + n as u64 * 40),
                    is_key,
                    data,
                    params: params.clone(),
                },
                &mut out,
            );
        }
        let mut file = Vec::new();
        let mut ends = Vec::new();
        for a in out {
            match a {
                Action::Open { init, .. } => file.extend_from_slice(&init),
                Action::Write(f) => {
                    file.extend_from_slice(&f.bytes);
                    ends.push(file.len() as u64);
                }
                Action::Close { .. } => {}
            }
        }
        (file, ends)
    }

    fn new_seg(rel: &str) -> NewSegment {
        NewSegment {
            camera_id: "cam".into(),
            run_id: 1,
            start_90k: T0_MS * 90,
            start_wall_ms: T0_MS,
            path: rel.into(),
            codec: "h264".into(),
            params_version: 0,
            codec_string: String::new(),
            width: 0,
            height: 0,
        }
    }

    fn write(dir: &Path, rel: &str, data: &[u8]) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    #[test]
    fn a_torn_segment_is_cut_back_to_its_last_complete_fragment() {
        let d = TempDir::new("torn");
        let ix = Index::open_in_memory(T0_MS).unwrap();
        let (file, ends) = segment_bytes(3);
        assert_eq!(ends.len(), 3);
        // Killed in the middle of writing the third GOP.
        let cut = (ends[1] + ends[2]) / 2;
        let rel = "cam/20231114/a.mp4";
        write(&d.0, rel, &file[..cut as usize]);
        let id = ix.begin_segment(&new_seg(rel)).unwrap();
        let r = recover(&d.0, &ix, 3_600_000).unwrap();
        assert_eq!(r.segments_recovered, 1);
        assert_eq!(r.bytes_truncated, cut - ends[1]);
        let s = ix.segment(id).unwrap().unwrap();
        assert_eq!(s.state, SegmentState::Complete);
        assert_eq!(s.bytes, ends[1]);
        assert_eq!(std::fs::metadata(d.0.join(rel)).unwrap().len(), ends[1]);
        // Two complete GOPs of 2 s: the row ends 4 s after its start, in both clocks.
        assert_eq!(s.end_90k - s.start_90k, 4 * 90_000);
        assert_eq!(s.end_wall_ms - s.start_wall_ms, 4_000);
        let kfs = ix.keyframes(id).unwrap();
        assert_eq!(kfs.len(), 2);
        assert_eq!(
            kfs[1].byte_offset, ends[0],
            "second GOP starts where the first ends"
        );
        assert_eq!(kfs[1].time_90k, s.start_90k + 2 * 90_000);
        // A second recovery changes nothing.
        assert_eq!(
            recover(&d.0, &ix, 3_600_000).unwrap(),
            RecoveryReport {
                dirs_listed: 3,
                ..RecoveryReport::default()
            }
        );
    }

    #[test]
    fn rows_without_usable_bytes_are_removed_and_deletions_finished() {
        let d = TempDir::new("rows");
        let ix = Index::open_in_memory(T0_MS).unwrap();
        let (file, ends) = segment_bytes(1);
        // Killed before the first fragment was complete; a row whose file never appeared; a
        // deletion interrupted after the row was marked.
        write(
            &d.0,
            "cam/20231114/torn.mp4",
            &file[..(ends[0] - 10) as usize],
        );
        let torn = ix.begin_segment(&new_seg("cam/20231114/torn.mp4")).unwrap();
        let missing = ix
            .begin_segment(&new_seg("cam/20231114/missing.mp4"))
            .unwrap();
        write(&d.0, "cam/20231114/old.mp4", &file);
        let old = ix.begin_segment(&new_seg("cam/20231114/old.mp4")).unwrap();
        ix.complete_segment(old, T0_MS * 90 + 180_000, T0_MS + 2000, file.len() as u64)
            .unwrap();
        ix.mark_deleting(&[old]).unwrap();
        let r = recover(&d.0, &ix, 3_600_000).unwrap();
        assert_eq!(r.rows_removed, 2);
        assert_eq!(r.deletions_finished, 1);
        for id in [torn, missing, old] {
            assert_eq!(ix.segment(id).unwrap(), None);
        }
        assert!(!d.0.join("cam/20231114/torn.mp4").exists());
        assert!(!d.0.join("cam/20231114/old.mp4").exists());
    }

    #[test]
    fn unknown_files_are_indexed_removed_or_quarantined() {
        let d = TempDir::new("unknown");
        let ix = Index::open_in_memory(T0_MS).unwrap();
        let (file, ends) = segment_bytes(2);
        // The index lost these rows (SQLite commits lost in a power cut).
        write(
            &d.0,
            "cam-7/20231114/1.mp4",
            &file[..(ends[1] - 3) as usize],
        );
        write(&d.0, "cam-7/20231114/2.mp4", &file[..100]); // init only, torn
        write(
            &d.0,
            "cam-7/20231114/3.mp4",
            b"not an mp4 at all, but not empty either",
        );
        let r = recover(&d.0, &ix, 3_600_000).unwrap();
        assert_eq!(r.files_indexed, 1);
        assert_eq!(r.files_removed, 1);
        assert_eq!(r.files_quarantined, 1);
        let segs = ix.segments("cam-7", 0, i64::MAX).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].path, "cam-7/20231114/1.mp4");
        assert_eq!(segs[0].bytes, ends[0]);
        assert_eq!(segs[0].state, SegmentState::Complete);
        assert_eq!(segs[0].start_90k, T0_MS * 90);
        assert_eq!(ix.keyframes(segs[0].id).unwrap().len(), 1);
        assert!(!d.0.join("cam-7/20231114/2.mp4").exists());
        assert!(d.0.join("lost+found/cam-7_20231114_3.mp4").exists());
    }

    #[test]
    fn a_complete_row_whose_file_vanished_or_shrank_is_corrected() {
        let d = TempDir::new("verify");
        let ix = Index::open_in_memory(T0_MS).unwrap();
        let (file, ends) = segment_bytes(2);
        let mut ids = Vec::new();
        for name in ["a", "b"] {
            let rel = format!("cam/20231114/{name}.mp4");
            write(&d.0, &rel, &file);
            let id = ix.begin_segment(&new_seg(&rel)).unwrap();
            ix.complete_segment(id, T0_MS * 90 + 360_000, T0_MS + 4000, file.len() as u64)
                .unwrap();
            ids.push(id);
        }
        std::fs::remove_file(d.0.join("cam/20231114/a.mp4")).unwrap();
        std::fs::write(
            d.0.join("cam/20231114/b.mp4"),
            &file[..ends[0] as usize + 5],
        )
        .unwrap();
        let r = recover(&d.0, &ix, 3_600_000).unwrap();
        assert_eq!((r.rows_removed, r.rows_corrected), (1, 1));
        assert_eq!(ix.segment(ids[0]).unwrap(), None);
        let b = ix.segment(ids[1]).unwrap().unwrap();
        assert_eq!(b.bytes, ends[0]);
        assert_eq!(b.end_wall_ms, T0_MS + 2000);
    }
}
