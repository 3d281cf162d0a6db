//! RBSP helpers: emulation-prevention removal and an MSB-first bit reader with exp-Golomb codes.
//! Every read returns `None` past the end of the data; nothing here panics on any input.

#![deny(clippy::indexing_slicing)]

/// Removes emulation-prevention bytes (`00 00 03` becomes `00 00`) from a NAL unit's payload.
pub fn unescape_rbsp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0usize;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
        out.push(b);
    }
    out
}

/// Reads bits most-significant first from a byte slice (already unescaped).
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits not yet read.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    pub fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    pub fn read_flag(&mut self) -> Option<bool> {
        self.read_bit()
    }

    /// Reads `n` bits (at most 32) as an unsigned number.
    pub fn read_bits(&mut self, n: u32) -> Option<u32> {
        if n > 32 || self.remaining() < n as usize {
            return None;
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.read_bit()?);
        }
        u32::try_from(v).ok()
    }

    /// Skips `n` bits; `None` if fewer remain.
    pub fn skip_bits(&mut self, n: usize) -> Option<()> {
        if self.remaining() < n {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// Unsigned exp-Golomb `ue(v)`; values that do not fit in 32 bits are rejected.
    pub fn read_ue(&mut self) -> Option<u32> {
        let mut leading = 0u32;
        while !self.read_bit()? {
            leading += 1;
            if leading > 31 {
                return None;
            }
        }
        if leading == 0 {
            return Some(0);
        }
        let rest = u64::from(self.read_bits(leading)?);
        u32::try_from((1u64 << leading) - 1 + rest).ok()
    }

    /// Signed exp-Golomb `se(v)`.
    pub fn read_se(&mut self) -> Option<i32> {
        let k = i64::from(self.read_ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).ok()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;

    #[test]
    fn unescapes() {
        assert_eq!(unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
        assert_eq!(unescape_rbsp(&[0, 0, 0, 3, 3]), vec![0, 0, 0, 3]);
        assert_eq!(unescape_rbsp(&[]), Vec::<u8>::new());
    }

    #[test]
    fn reads_exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0,1,2,3,4 ; packed: 1010 0110 0100 0010 1(000)
        let d = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&d);
        assert_eq!(r.read_ue(), Some(0));
        assert_eq!(r.read_ue(), Some(1));
        assert_eq!(r.read_ue(), Some(2));
        assert_eq!(r.read_ue(), Some(3));
        assert_eq!(r.read_ue(), Some(4));
        let mut r = BitReader::new(&d);
        assert_eq!(r.read_se(), Some(0));
        assert_eq!(r.read_se(), Some(1));
        assert_eq!(r.read_se(), Some(-1));
        assert_eq!(r.read_se(), Some(2));
        assert_eq!(r.read_se(), Some(-2));
    }

    #[test]
    fn never_reads_past_end() {
        let mut r = BitReader::new(&[0, 0, 0, 0, 0]);
        assert_eq!(r.read_ue(), None);
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(9), None);
        assert_eq!(r.read_bits(33), None);
        assert_eq!(r.read_bits(8), Some(0xff));
        assert_eq!(r.read_bit(), None);
        assert_eq!(r.skip_bits(1), None);
        let mut r = BitReader::new(&[]);
        assert_eq!(r.read_ue(), None);
        assert_eq!(r.read_se(), None);
        // 31 leading zeros then a 1 and 31 ones: 2^32 - 2 fits; 32 leading zeros does not.
        let d = [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe];
        assert_eq!(BitReader::new(&d).read_ue(), Some(u32::MAX - 1));
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0x80]).read_ue(), None);
    }
}
