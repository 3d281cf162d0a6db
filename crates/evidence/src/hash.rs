//! SHA-256 of exports: while they are written, and of a file afterwards.

use base::{Error, ErrorKind, ResultExt};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;

/// The read buffer of [`hash_file`] and [`hash_reader`].
pub const HASH_BUFFER_BYTES: usize = 64 * 1024;

/// A writer that hashes exactly the bytes its inner writer accepted, and counts them.
///
/// An export streams through it to its `.part` file; [`Sha256Writer::finish`] then gives the size
/// and SHA-256 for the manifest without reading the file again.
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Sha256Writer {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inner writer (read-only: bytes written to it directly would not be hashed).
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, the byte count and the lower-case hex SHA-256 of what was written. Does
    /// not flush: flush (and `sync_all` a file) before, as the bytes' durability is the caller's.
    pub fn finish(self) -> (W, u64, String) {
        let digest = self.hasher.finalize();
        (self.inner, self.len, crate::hex(&digest))
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // A writer that claims more than it was given is broken; hash only what exists.
        let done = buf.get(..n).unwrap_or(buf);
        self.hasher.update(done);
        self.len += done.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> fmt::Debug for Sha256Writer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sha256Writer")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Size and lower-case hex SHA-256 of everything `r` yields, read [`HASH_BUFFER_BYTES`] at a time.
pub fn hash_reader(mut r: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER_BYTES];
    let mut len = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or(&buf[..]);
        hasher.update(chunk);
        len += chunk.len() as u64;
    }
    Ok((len, crate::hex(&hasher.finalize())))
}

/// Size and lower-case hex SHA-256 of the file at `path`, streamed with a bounded buffer.
pub fn hash_file(path: &Path) -> Result<(u64, String), Error> {
    let f = std::fs::File::open(path).map_err(|e| io_err(e, path, "cannot open"))?;
    hash_reader(f).err_kind(
        ErrorKind::Unavailable,
        format!("cannot read {}", path.display()),
    )
}

pub(crate) fn io_err(e: io::Error, path: &Path, what: &str) -> Error {
    let kind = match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    // FIPS 180-2 test vectors.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn writer_hashes_and_counts_what_it_writes() {
        let w = Sha256Writer::new(Vec::new());
        assert!(w.is_empty());
        let (v, n, h) = w.finish();
        assert_eq!((v.len(), n, h.as_str()), (0, 0, EMPTY));

        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"bc").unwrap();
        w.flush().unwrap();
        assert_eq!(w.len(), 3);
        let (v, n, h) = w.finish();
        assert_eq!((&v[..], n, h.as_str()), (&b"abc"[..], 3, ABC));
    }

    /// A short-writing inner writer: only the bytes it took are hashed.
    #[test]
    fn writer_hashes_only_accepted_bytes() {
        struct TwoAtATime(Vec<u8>);
        impl Write for TwoAtATime {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let n = buf.len().min(2);
                self.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = Sha256Writer::new(TwoAtATime(Vec::new()));
        assert_eq!(w.write(b"abc").unwrap(), 2);
        w.write_all(b"c").unwrap();
        let (inner, n, h) = w.finish();
        assert_eq!((&inner.0[..], n, h.as_str()), (&b"abc"[..], 3, ABC));
    }

    #[test]
    fn file_hash_matches_the_writer_across_buffer_boundaries() {
        let dir = std::env::temp_dir().join(format!("evidence-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..HASH_BUFFER_BYTES * 2 + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let path = dir.join("f.bin");
        let mut w = Sha256Writer::new(std::fs::File::create(&path).unwrap());
        for chunk in data.chunks(1000) {
            w.write_all(chunk).unwrap();
        }
        let (_, n, h) = w.finish();
        assert_eq!(hash_file(&path).unwrap(), (n, h.clone()));
        assert_eq!(n, data.len() as u64);
        assert_eq!(hash_reader(&data[..]).unwrap(), (n, h));
        let missing = hash_file(&dir.join("missing")).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
