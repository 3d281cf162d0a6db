//! Reading recorded segment files and building what playback and export serve from them
//! (design 0008). Pure: no I/O, no clock; callers read the bytes and serve the results.
//!
//! - Readers of untrusted bytes: [`read_init`] (a segment's `ftyp` + `moov`: the tracks' sample
//!   entries, timescales, picture size, any edit list) and [`read_fragment`] (one `moof`: every
//!   sample's absolute byte range in the file, duration and sync flag). They never panic, use
//!   checked arithmetic, and bound what they allocate by the input's size ([`MAX_INIT_LEN`],
//!   [`MAX_MOOF_LEN`], [`MAX_FRAGMENT_SAMPLES`]). Corrupt input fails with `DataLoss`; valid MP4
//!   that Vantage does not handle (an unknown codec, composition offsets) with `InvalidArgument`.
//! - The progressive ("virtual") MP4: [`Builder`] turns fragments of one or more files into a
//!   [`VirtualMp4`]: a header built in memory (`ftyp`, `moov` with complete sample tables, the
//!   `mdat` box header) plus a list of byte ranges of the source files that, back to back, are the
//!   `mdat` payload. [`VirtualMp4::slices`] says what to read for any byte range;
//!   [`VirtualMp4::etag`] is a strong validator.
//! - Fragments for MSE and HLS: [`mse_init`] (an init segment for a file's tracks) and
//!   [`remux_moof`] (a source `moof` with a new sequence number and decode times).
//!
//! Tracks of a fragment are told apart by order, as [`crate::fmp4`] writes them: the first
//! `traf` is the video track's, the second (if any) the audio track's; [`Builder::push`] checks
//! their `track_ID`s against the file's [`InitInfo`].

#![deny(clippy::indexing_slicing)]

mod boxes;
mod build;
mod fragment;
mod init;
mod mse;

pub use build::{Builder, Metadata, Piece, Slice, Slices, VirtualMp4};
pub use fragment::{
    FragmentSamples, MAX_FRAGMENT_SAMPLES, MAX_MOOF_LEN, SampleInfo, TrackFragment, read_fragment,
};
pub use init::{AudioTrack, InitInfo, MAX_INIT_LEN, VideoTrack, read_init};
pub use mse::{mse_init, remux_moof};
