//! A small deterministic mutator, so that `cargo test` on stable explores inputs near the seeds
//! the way a fuzzer's first minutes do: bit flips, interesting bytes and integers, truncations,
//! removed, duplicated and inserted ranges, dictionary tokens, and splices with other seeds.
//!
//! The generator is SplitMix64: tiny, with a fixed output for a given seed on every platform and
//! release, so a failing input is found again by the same test run.

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator seeded from a name (FNV-1a), so each target draws its own sequence.
    pub fn from_name(name: &str) -> Self {
        Rng(fnv1a(name.as_bytes()))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Inputs never grow beyond this, so a run's time stays bounded.
pub const MAX_LEN: usize = 64 * 1024;

const INTERESTING_BYTES: [u8; 16] = [
    0x00, 0x01, 0x03, 0x7f, 0x80, 0xff, b'\r', b'\n', b' ', b':', b'=', b'"', b'<', b'>', b'0',
    b'9',
];

const INTERESTING_U32: [u32; 10] = [
    0,
    1,
    7,
    8,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];

/// Tokens that matter to the parsers under test: start codes, ADTS sync words, box types, RTSP
/// and SDP syntax, JSON and XML punctuation, numbers at type limits.
const DICTIONARY: &[&[u8]] = &[
    b"\x00\x00\x01",
    b"\x00\x00\x00\x01",
    b"\x00\x00\x03",
    b"\xff\xf1",
    b"\xff\xf9",
    b"moof",
    b"mdat",
    b"moov",
    b"trak",
    b"traf",
    b"trun",
    b"tfhd",
    b"\r\n",
    b"\r\n\r\n",
    b"Content-Length: ",
    b"CSeq: ",
    b"$\x00",
    b"rtsp://",
    b"a=rtpmap:",
    b"a=fmtp:",
    b"m=video ",
    b"profile-level-id=",
    b"packetization-mode=1",
    b"apt=",
    b"a=mid:",
    b": ",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\u0000",
    b"null",
    b"-1",
    b"1e999",
    b"4294967296",
    b"18446744073709551616",
    b"99999999999999999999",
    b"<",
    b"</",
    b"/>",
    b"&amp;",
    b"&#x0;",
    b"<![CDATA[",
    b"0001-01-01T00:00:00",
    b"9999-12-31T23:59:59.9999999+14:00",
    b"VANTAGE__",
    b"MILESTONE_",
    b"rtsp://u:p@h/s?password=x",
    b"\xc3\xa9",
    b"\xf0\x9f\x92\xa9",
    b"\xff",
];

/// One mutated copy of `input`: one to four random edits, sometimes splicing in `others` (other
/// seeds of the same target).
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        edit(rng, &mut out, others);
    }
    out.truncate(MAX_LEN);
    out
}

fn edit(rng: &mut Rng, out: &mut Vec<u8>, others: &[&[u8]]) {
    let len = out.len();
    match rng.below(12) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len);
            out[i] ^= 1 << rng.below(8);
        }
        // An interesting byte.
        1 if len > 0 => {
            let i = rng.below(len);
            out[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
        }
        // A random byte.
        2 if len > 0 => {
            let i = rng.below(len);
            out[i] = rng.byte();
        }
        // An interesting integer, big- or little-endian, 1, 2 or 4 bytes wide.
        3 if len > 0 => {
            let v = INTERESTING_U32[rng.below(INTERESTING_U32.len())];
            let be = v.to_be_bytes();
            let le = v.to_le_bytes();
            let width = [1, 2, 4][rng.below(3)];
            let bytes: &[u8] = if rng.below(2) == 0 {
                &be[4 - width..]
            } else {
                &le[..width]
            };
            let i = rng.below(len);
            let n = bytes.len().min(len - i);
            out[i..i + n].copy_from_slice(&bytes[..n]);
        }
        // Truncate.
        4 if len > 0 => out.truncate(rng.below(len)),
        // Remove a range.
        5 if len > 0 => {
            let a = rng.below(len);
            let b = a + 1 + rng.below((len - a).min(64));
            out.drain(a..b.min(len));
        }
        // Duplicate a range somewhere else.
        6 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(256)).min(len);
            let chunk = out[a..b].to_vec();
            let at = rng.below(len + 1);
            out.splice(at..at, chunk);
        }
        // Insert random bytes.
        7 => {
            let n = 1 + rng.below(16);
            let at = rng.below(len + 1);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            out.splice(at..at, bytes);
        }
        // Insert or overwrite with a dictionary token.
        8 | 9 => {
            let tok = DICTIONARY[rng.below(DICTIONARY.len())];
            let at = rng.below(len + 1);
            if rng.below(2) == 0 || at + tok.len() > len {
                out.splice(at..at, tok.iter().copied());
            } else {
                out[at..at + tok.len()].copy_from_slice(tok);
            }
        }
        // Splice: a prefix of this input, a suffix of another seed.
        10 if !others.is_empty() => {
            let other = others[rng.below(others.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        // Repeat the whole input (pipelined messages, repeated frames or boxes).
        11 if len > 0 && len < MAX_LEN / 2 => out.extend_from_within(..),
        _ => {
            let at = rng.below(len + 1);
            out.insert(at, rng.byte());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs() {
        let seed = b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        let run = || {
            let mut rng = Rng::from_name("t");
            (0..200)
                .map(|_| mutate(&mut rng, seed, &[b"abc"]))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        // The edits actually change things, and differently each time.
        assert!(a.iter().filter(|m| m[..] != seed[..]).count() > 190);
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 150, "{} distinct", distinct.len());
        assert!(a.iter().all(|m| m.len() <= MAX_LEN));
    }

    #[test]
    fn empty_input_grows() {
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let _ = mutate(&mut rng, &[], &[]);
        }
    }
}
