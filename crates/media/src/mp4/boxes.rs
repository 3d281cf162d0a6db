//! Box-level reading of untrusted bytes: headers, children, a big-endian cursor. Every failure is
//! a `DataLoss` error naming what was being read.

use base::{Error, err};

/// One box inside a parent's body.
#[derive(Clone, Copy, Debug)]
pub(super) struct BoxRef<'a> {
    pub fourcc: [u8; 4],
    /// The whole box, header included.
    pub whole: &'a [u8],
    /// The body (after the 8- or 16-byte header).
    pub body: &'a [u8],
}

/// The box at the start of `b`: its header must be complete and its size fit in `b` (bytes after
/// it are left alone). `size` 0 ("to the end") is refused: Vantage never writes it.
pub(super) fn first_box(b: &[u8]) -> Result<BoxRef<'_>, Error> {
    let mut r = Reader::new(b, "box header");
    let size32 = r.u32()?;
    let fourcc = r.fourcc()?;
    let (header_len, size) = match size32 {
        0 => return Err(err!(DataLoss, "{} box without a size", show(&fourcc))),
        1 => (16u64, r.u64()?),
        s => (8, u64::from(s)),
    };
    if size < header_len || size > b.len() as u64 {
        return Err(err!(
            DataLoss,
            "{} box of {size} bytes in {} bytes",
            show(&fourcc),
            b.len()
        ));
    }
    // Both fit usize: no larger than b.len().
    let whole = b
        .get(..size as usize)
        .ok_or_else(|| err!(DataLoss, "box size"))?;
    let body = whole
        .get(header_len as usize..)
        .ok_or_else(|| err!(DataLoss, "box size"))?;
    Ok(BoxRef {
        fourcc,
        whole,
        body,
    })
}

/// The boxes that tile `b` exactly, in order.
pub(super) fn children(mut b: &[u8]) -> Result<Vec<BoxRef<'_>>, Error> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let x = first_box(b)?;
        b = b.get(x.whole.len()..).unwrap_or_default();
        out.push(x);
    }
    Ok(out)
}

/// The body of the only child `fourcc` of `b`, if there is one; a second is an error.
pub(super) fn child<'a>(b: &'a [u8], fourcc: &[u8; 4]) -> Result<Option<&'a [u8]>, Error> {
    let mut found = None;
    for c in children(b)? {
        if &c.fourcc == fourcc && found.replace(c.body).is_some() {
            return Err(err!(DataLoss, "two {} boxes", show(fourcc)));
        }
    }
    Ok(found)
}

/// The body of the only child `fourcc` of `b`; missing is an error.
pub(super) fn need<'a>(b: &'a [u8], fourcc: &[u8; 4]) -> Result<&'a [u8], Error> {
    child(b, fourcc)?.ok_or_else(|| err!(DataLoss, "no {} box", show(fourcc)))
}

/// A four-character code for messages (non-ASCII bytes escaped).
pub(super) fn show(fourcc: &[u8; 4]) -> String {
    fourcc.escape_ascii().to_string()
}

/// Big-endian cursor; reading past the end is a `DataLoss` error naming `what`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reader<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Reader { b, what }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, rest) = self
            .b
            .split_at_checked(n)
            .ok_or_else(|| err!(DataLoss, "{} is truncated", self.what))?;
        self.b = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let what = self.what;
        self.take(N)?
            .try_into()
            .map_err(|_| err!(DataLoss, "{what} is truncated"))
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.take(n).map(|_| ())
    }

    pub fn u16(&mut self) -> Result<u16, Error> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn i32(&mut self) -> Result<i32, Error> {
        self.array().map(i32::from_be_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_be_bytes)
    }

    pub fn i64(&mut self) -> Result<i64, Error> {
        self.array().map(i64::from_be_bytes)
    }

    pub fn fourcc(&mut self) -> Result<[u8; 4], Error> {
        self.array()
    }

    /// A full box's version and 24-bit flags.
    pub fn version_flags(&mut self) -> Result<(u8, u32), Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    pub fn remaining(&self) -> usize {
        self.b.len()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.b
    }
}
