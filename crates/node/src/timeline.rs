//! The recording timeline of a camera: Vantage's own segments (from the media index, read on a
//! blocking thread) merged into runs of contiguous recording (`local`), and for XProtect cameras
//! the recording server's sequences (`SequencesGet`) for the time local recording does not cover
//! (`xprotect`). Gaps are what neither covers (design 0005).

use crate::Services;
use crate::ports::{Span, Timeline};
use base::clock::unix_ms;
use base::err;
use recorder::index::QueryError;
use std::sync::Arc;
use std::time::SystemTime;

fn resolution_of(s: &recorder::index::Segment) -> Option<String> {
    (s.width > 0 && s.height > 0).then(|| format!("{}x{}", s.width, s.height))
}

/// The parts of `v` that none of `cover` (sorted, disjoint) overlaps.
fn subtract(v: &Span, cover: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut from = v.start;
    for c in cover {
        if c.end <= from || c.start >= v.end {
            continue;
        }
        if c.start > from {
            out.push(Span {
                start: from,
                end: c.start,
                ..v.clone()
            });
        }
        from = from.max(c.end);
    }
    if from < v.end {
        out.push(Span {
            start: from,
            ..v.clone()
        });
    }
    out
}

/// A segment has audio when its RFC 6381 codecs list names an audio codec (AAC: `mp4a`).
fn has_audio(seg: &recorder::index::Segment) -> bool {
    seg.codec_string
        .split(',')
        .any(|c| c.trim().starts_with("mp4a"))
}

/// The timeline of `camera_id` in `[start, end)`.
pub(crate) async fn timeline(
    st: &Arc<Services>,
    camera_id: &str,
    start: SystemTime,
    end: SystemTime,
) -> Result<Timeline, QueryError> {
    let Some(cam) = st.catalog.get(camera_id) else {
        return Err(err!(NotFound, "camera `{camera_id}` not found").into());
    };
    let (start_ms, end_ms) = (unix_ms(start), unix_ms(end));
    let segments = {
        // Bounded (span and row count) and on a read-only connection, off the runtime.
        let (reader, id) = (st.recorder.reader(), camera_id.to_owned());
        tokio::task::spawn_blocking(move || reader.segments(&id, start_ms, end_ms))
            .await
            .map_err(|e| QueryError::from(err!(Internal, "blocking task failed: {e}")))??
    };
    // Vantage's own segments, merged into runs: segments of one run follow each other exactly
    // (allow 1 ms of rounding).
    let mut local: Vec<Span> = Vec::new();
    for seg in segments {
        let e = seg.end_wall_ms.max(seg.start_wall_ms);
        match local.last_mut() {
            Some(l)
                if seg.start_wall_ms <= l.end + 1
                    && l.codec.as_ref() == Some(&seg.codec)
                    && l.resolution == resolution_of(&seg)
                    && l.has_audio == Some(has_audio(&seg)) =>
            {
                l.end = l.end.max(e);
            }
            _ => local.push(Span {
                start: seg.start_wall_ms,
                end: e,
                source: "local",
                resolution: resolution_of(&seg),
                has_audio: Some(has_audio(&seg)),
                codec: Some(seg.codec),
            }),
        }
    }
    let vms_spans: Vec<Span> = match (&st.vms, cam.vms()) {
        (Some(v), Some(_)) => v
            .sequences(&cam, start, end)
            .await?
            .iter()
            .map(|s| Span {
                start: unix_ms(s.begin),
                end: unix_ms(s.end),
                source: "xprotect",
                codec: None,
                resolution: None,
                has_audio: None,
            })
            .collect(),
        (None, Some(_)) if local.is_empty() => {
            return Err(err!(
                Unavailable,
                "camera `{camera_id}` is an XProtect camera but no VMS is configured"
            )
            .into());
        }
        _ => Vec::new(),
    };
    let source = match (local.is_empty(), cam.vms().is_some()) {
        (false, true) => "local+xprotect",
        (false, false) => "local",
        (true, true) => "xprotect",
        (true, false) => "none",
    };
    let mut spans = local.clone();
    for v in &vms_spans {
        spans.extend(subtract(v, &local));
    }
    for s in &mut spans {
        s.start = s.start.max(start_ms);
        s.end = s.end.min(end_ms);
    }
    spans.retain(|s| s.end > s.start);
    spans.sort_by_key(|s| (s.start, s.end));
    // Recording continues after the last recorded moment while the camera is being recorded:
    // that tail is not a gap.
    let recording_now = st.recorder.is_recording(camera_id);
    Ok(Timeline {
        source,
        gaps: gaps(&spans, start_ms, end_ms, recording_now),
        live: st.hub.get(camera_id).and_then(|c| c.params()),
        spans,
    })
}

/// What no span covers in `[start, end)` (`spans` sorted by start, clipped to the window): from
/// the window's start to the first span, between spans, and after the last one unless
/// `open_end` (the camera is recording: its recording goes on there).
fn gaps(spans: &[Span], start: i64, end: i64, open_end: bool) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut covered_to = start;
    for s in spans {
        if s.start > covered_to {
            out.push((covered_to, s.start));
        }
        covered_to = covered_to.max(s.end);
    }
    if covered_to < end && (spans.is_empty() || !open_end) {
        out.push((covered_to, end));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: i64, end: i64) -> Span {
        Span {
            start,
            end,
            source: "xprotect",
            codec: None,
            resolution: None,
            has_audio: None,
        }
    }

    #[test]
    fn gaps_cover_the_whole_window_from_its_start() {
        let spans = [span(10, 20), span(30, 40)];
        assert_eq!(
            gaps(&spans, 0, 50, false),
            vec![(0, 10), (20, 30), (40, 50)]
        );
        // While the camera records, the time after its last recorded moment is not a gap.
        assert_eq!(gaps(&spans, 0, 50, true), vec![(0, 10), (20, 30)]);
        // Nothing recorded: the whole window is one gap.
        assert_eq!(gaps(&[], 0, 50, true), vec![(0, 50)]);
    }

    #[test]
    fn xprotect_fills_only_what_local_recording_does_not_cover() {
        let local = [span(10, 20), span(30, 40)];
        let got: Vec<(i64, i64)> = subtract(&span(0, 50), &local)
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(got, vec![(0, 10), (20, 30), (40, 50)]);
        assert!(subtract(&span(12, 18), &local).is_empty());
        let got: Vec<(i64, i64)> = subtract(&span(15, 35), &local)
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(got, vec![(20, 30)]);
    }
}
