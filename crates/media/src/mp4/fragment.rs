//! [`read_fragment`]: the sample tables of one `moof`.

use super::boxes::{Reader, children, first_box, show};
use base::{Error, bail, err};
use std::ops::Range;

/// Largest `moof` read ([`crate::scan::MAX_META_BOX_LEN`]: ours grow by 16 bytes per video
/// sample and 8 per audio sample, a few KiB per GOP).
pub const MAX_MOOF_LEN: usize = crate::scan::MAX_META_BOX_LEN as usize;

/// Most samples of all tracks in one fragment. A `trun` whose samples all take `tfhd` defaults
/// holds any count in 20 bytes; this bounds what such a count makes [`read_fragment`] allocate.
/// (A 10 s GOP at 60 fps with 48 kHz AAC has about 1,100.)
pub const MAX_FRAGMENT_SAMPLES: usize = 1 << 18;

/// `tfhd` flags.
const BASE_DATA_OFFSET: u32 = 0x01;
const SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const DEFAULT_DURATION: u32 = 0x08;
const DEFAULT_SIZE: u32 = 0x10;
const DEFAULT_FLAGS: u32 = 0x20;
const DURATION_IS_EMPTY: u32 = 0x01_0000;
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags.
const DATA_OFFSET: u32 = 0x001;
const FIRST_SAMPLE_FLAGS: u32 = 0x004;
const SAMPLE_DURATION: u32 = 0x100;
const SAMPLE_SIZE: u32 = 0x200;
const SAMPLE_FLAGS: u32 = 0x400;
const SAMPLE_CTS: u32 = 0x800;
/// `sample_is_non_sync_sample` in `sample_flags`.
const NON_SYNC: u32 = 0x0001_0000;

/// The samples of one fragment, as [`read_fragment`] found them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentSamples {
    /// `mfhd` sequence number.
    pub sequence: u32,
    /// The first `traf`'s samples.
    pub video: TrackFragment,
    /// The second `traf`'s, if there is one.
    pub audio: Option<TrackFragment>,
}

/// One track's part of a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackFragment {
    /// `tfhd` `track_ID`.
    pub track_id: u32,
    /// `tfdt` base media decode time, in the track's timescale.
    pub base_decode_time: u64,
    /// At least one; their bytes lie back to back in the file ([`Self::byte_range`]).
    pub samples: Vec<SampleInfo>,
}

/// One sample of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleInfo {
    /// Absolute byte offset of the sample in the file.
    pub offset: u64,
    pub size: u32,
    /// In the track's timescale.
    pub duration: u32,
    /// A sync sample (random-access point; every audio sample).
    pub is_sync: bool,
}

impl TrackFragment {
    /// Sum of the sample durations (the track's timescale).
    pub fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }

    /// The file's bytes holding the samples: from the first sample's offset to the end of the
    /// last.
    pub fn byte_range(&self) -> Range<u64> {
        match (self.samples.first(), self.samples.last()) {
            // No overflow: read_fragment checked every sample's end.
            (Some(f), Some(l)) => f.offset..l.offset + u64::from(l.size),
            _ => 0..0,
        }
    }
}

impl FragmentSamples {
    /// The file's bytes holding all the fragment's samples (video, then audio right after).
    pub fn byte_range(&self) -> Range<u64> {
        let v = self.video.byte_range();
        match &self.audio {
            Some(a) => v.start..a.byte_range().end,
            None => v,
        }
    }
}

/// Reads the sample tables of a fragment whose `moof` box starts `moof` (bytes after the box are
/// not looked at) and lies at `moof_offset` in its file.
///
/// Each sample's offset is `moof_offset` + its `trun`'s `data_offset` + the sizes of the samples
/// before it in that run (base-data-offset and runs without a data offset are followed too). Per
/// sample durations, sizes and flags come from the `trun`, else the `tfhd` defaults (a default
/// missing where needed is an error: the `trex` defaults are not looked up, Vantage's writer
/// never relies on them).
///
/// Checks what playback relies on: one `mfhd`; one or two `traf`s, each with `tfhd`, `tfdt` and
/// runs holding at least one sample; each track's samples back to back, the audio's right after
/// the video's; no sample end past `u64`. Whether the samples lie inside the `mdat` is the
/// caller's to check ([`FragmentSamples::byte_range`] against the file). Composition time offsets
/// other than 0 are refused (`InvalidArgument`): the virtual MP4 has no `ctts`.
pub fn read_fragment(moof: &[u8], moof_offset: u64) -> Result<FragmentSamples, Error> {
    let b = first_box(moof)?;
    if &b.fourcc != b"moof" {
        bail!(DataLoss, "expected a moof box, found {}", show(&b.fourcc));
    }
    if b.whole.len() > MAX_MOOF_LEN {
        bail!(
            DataLoss,
            "moof of {} bytes is larger than {MAX_MOOF_LEN}",
            b.whole.len()
        );
    }
    let mut sequence = None;
    let mut trafs = Vec::new();
    let mut budget = MAX_FRAGMENT_SAMPLES;
    let mut next = None; // End of the previous track's data.
    for c in children(b.body)? {
        match &c.fourcc {
            b"mfhd" => {
                let mut r = Reader::new(c.body, "mfhd");
                r.version_flags()?;
                if sequence.replace(r.u32()?).is_some() {
                    bail!(DataLoss, "two mfhd boxes");
                }
            }
            b"traf" => {
                if trafs.len() == 2 {
                    bail!(DataLoss, "more than two traf boxes");
                }
                let t = read_traf(c.body, moof_offset, next, &mut budget)?;
                next = Some(t.byte_range().end);
                trafs.push(t);
            }
            _ => {}
        }
    }
    let Some(sequence) = sequence else {
        bail!(DataLoss, "moof without mfhd");
    };
    let mut trafs = trafs.into_iter();
    let Some(video) = trafs.next() else {
        bail!(DataLoss, "moof without traf");
    };
    let audio = trafs.next();
    // The data follows the moof (in its mdat).
    let moof_end = moof_offset
        .checked_add(b.whole.len() as u64)
        .ok_or_else(|| err!(DataLoss, "moof past 2^64"))?;
    if video.byte_range().start < moof_end {
        bail!(DataLoss, "sample data inside or before the moof");
    }
    if audio.as_ref().is_some_and(|a| a.track_id == video.track_id) {
        bail!(DataLoss, "two traf boxes for track {}", video.track_id);
    }
    Ok(FragmentSamples {
        sequence,
        video,
        audio,
    })
}

/// Reads one `traf`. `prev_end` is where the previous track's data ended (`None` for the first
/// track): this track's samples must start there. `budget` is how many more samples may be read.
fn read_traf(
    traf: &[u8],
    moof_offset: u64,
    prev_end: Option<u64>,
    budget: &mut usize,
) -> Result<TrackFragment, Error> {
    let mut tfhd = None;
    let mut tfdt = None;
    let mut truns = Vec::new();
    for c in children(traf)? {
        let slot = match &c.fourcc {
            b"tfhd" => &mut tfhd,
            b"tfdt" => &mut tfdt,
            b"trun" => {
                truns.push(c.body);
                continue;
            }
            _ => continue,
        };
        if slot.replace(c.body).is_some() {
            bail!(DataLoss, "two {} boxes in a traf", show(&c.fourcc));
        }
    }
    let (Some(tfhd), Some(tfdt)) = (tfhd, tfdt) else {
        bail!(DataLoss, "traf without tfhd or tfdt");
    };

    let mut r = Reader::new(tfhd, "tfhd");
    let (_, tf_flags) = r.version_flags()?;
    let track_id = r.u32()?;
    if tf_flags & DURATION_IS_EMPTY != 0 {
        bail!(
            DataLoss,
            "track {track_id}: empty fragment (duration-is-empty)"
        );
    }
    let base = if tf_flags & BASE_DATA_OFFSET != 0 {
        r.u64()?
    } else if tf_flags & DEFAULT_BASE_IS_MOOF != 0 || prev_end.is_none() {
        moof_offset
    } else {
        // ISO/IEC 14496-12 8.8.7.1: a later traf without either flag counts from the end of the
        // previous track's data.
        prev_end.unwrap_or(moof_offset)
    };
    if tf_flags & SAMPLE_DESCRIPTION_INDEX != 0 {
        r.u32()?;
    }
    let def_duration = (tf_flags & DEFAULT_DURATION != 0)
        .then(|| r.u32())
        .transpose()?;
    let def_size = (tf_flags & DEFAULT_SIZE != 0)
        .then(|| r.u32())
        .transpose()?;
    let def_flags = (tf_flags & DEFAULT_FLAGS != 0)
        .then(|| r.u32())
        .transpose()?;

    let mut r = Reader::new(tfdt, "tfdt");
    let base_decode_time = match r.version_flags()?.0 {
        0 => u64::from(r.u32()?),
        1 => r.u64()?,
        v => bail!(DataLoss, "tfdt version {v}"),
    };

    let mut samples: Vec<SampleInfo> = Vec::new();
    let mut pos = base; // Where the next run without a data offset starts.
    for trun in truns {
        let mut r = Reader::new(trun, "trun");
        let (_, flags) = r.version_flags()?;
        let count = r.u32()?;
        if flags & DATA_OFFSET != 0 {
            let off = r.i32()?;
            pos = base
                .checked_add_signed(i64::from(off))
                .ok_or_else(|| err!(DataLoss, "track {track_id}: data offset out of range"))?;
        }
        let first_flags = (flags & FIRST_SAMPLE_FLAGS != 0)
            .then(|| r.u32())
            .transpose()?;
        let per_sample = 4 * [SAMPLE_DURATION, SAMPLE_SIZE, SAMPLE_FLAGS, SAMPLE_CTS]
            .iter()
            .filter(|&&bit| flags & bit != 0)
            .count();
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        // With per-sample fields the entries fill the box, which bounds the count; without,
        // the budget does.
        if per_sample != 0 && n.checked_mul(per_sample) != Some(r.remaining()) {
            bail!(
                DataLoss,
                "track {track_id}: trun of {count} samples has {} bytes of entries",
                r.remaining()
            );
        }
        if n > *budget {
            bail!(
                DataLoss,
                "more than {MAX_FRAGMENT_SAMPLES} samples in a fragment"
            );
        }
        *budget -= n;
        if let Some(last) = samples.last() {
            // Runs of one track back to back (the writer has one run per track).
            if last.offset + u64::from(last.size) != pos {
                bail!(DataLoss, "track {track_id}: runs are not contiguous");
            }
        }
        samples.reserve(n);
        for i in 0..n {
            let duration = match flags & SAMPLE_DURATION {
                0 => def_duration
                    .ok_or_else(|| err!(DataLoss, "track {track_id}: no sample duration"))?,
                _ => r.u32()?,
            };
            let size = match flags & SAMPLE_SIZE {
                0 => def_size.ok_or_else(|| err!(DataLoss, "track {track_id}: no sample size"))?,
                _ => r.u32()?,
            };
            let own_flags = (flags & SAMPLE_FLAGS != 0).then(|| r.u32()).transpose()?;
            if flags & SAMPLE_CTS != 0 && r.u32()? != 0 {
                bail!(
                    InvalidArgument,
                    "track {track_id}: composition time offsets are not supported"
                );
            }
            let sample_flags = match (i, first_flags) {
                (0, Some(f)) => f,
                _ => own_flags.or(def_flags).unwrap_or(0),
            };
            let end = pos
                .checked_add(u64::from(size))
                .ok_or_else(|| err!(DataLoss, "track {track_id}: sample past 2^64"))?;
            samples.push(SampleInfo {
                offset: pos,
                size,
                duration,
                is_sync: sample_flags & NON_SYNC == 0,
            });
            pos = end;
        }
    }
    let Some(first) = samples.first() else {
        bail!(DataLoss, "track {track_id}: fragment without samples");
    };
    if let Some(prev) = prev_end
        && first.offset != prev
    {
        bail!(
            DataLoss,
            "track {track_id}: data at {} does not follow the previous track's (ending at {prev})",
            first.offset
        );
    }
    Ok(TrackFragment {
        track_id,
        base_decode_time,
        samples,
    })
}
