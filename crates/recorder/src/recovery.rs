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

use crate::index::{Index, Keyframe, NewSegment, Segment, SegmentState};
use crate::scan::{self, Scan};
use crate::writer::{camera_dir, day_dir, sync_dir};
use crate::{TICKS_PER_MS, ticks_to_ms};
use base::{Error, ErrorKind, ResultExt};
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

/// The key frames of a scanned file: the fragments that start with a key frame.
fn keyframes(scan: &Scan) -> Vec<Keyframe> {
    scan.fragments
        .iter()
        .filter(|f| f.starts_with_key)
        .filter_map(|f| {
            Some(Keyframe {
                time_90k: i64::try_from(f.base_decode_time).ok()?,
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
        let from_day = index
            .latest_segment(&camera_id)?
            .map(|s| day_dir(s.start_wall_ms));
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
                if index.has_path(&rel)? {
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
        if sc.total_len == 0 || sc.valid_len == sc.init_len {
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
    };
    index.insert_recovered(&seg, end, ticks_to_ms(end), sc.valid_len, &keyframes(&sc))?;
    r.files_indexed += 1;
    Ok(())
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
