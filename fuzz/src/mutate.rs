//! Deterministic byte-level mutations for the short run in the test suite
//! (the long runs use libFuzzer's own, guided by coverage). Not coverage
//! guided: a seeded generator stacks a few of the usual mutations (bit
//! flips, interesting integers, inserted, deleted, repeated and spliced
//! ranges, truncation, a zeroed disk sector) on inputs from the corpus.

/// A small, seeded, portable random generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

const INTERESTING: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    u64::MAX,
    u64::MAX / 2,
    512,
    4096,
    16 << 20,
];

/// One mutation of `data` in place (`other`: an input to splice from).
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    match rng.below(11) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next_u64() as u8;
        }
        2 if len > 0 => {
            // An interesting integer, 1 to 8 bytes, either byte order.
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let width = [1, 2, 4, 8][rng.below(4)];
            let bytes = if rng.one_in(2) {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            let i = rng.below(len);
            let bytes = if rng.one_in(2) {
                &bytes[..width]
            } else {
                &bytes[8 - width..]
            };
            for (k, b) in bytes.iter().enumerate() {
                if let Some(d) = data.get_mut(i + k) {
                    *d = *b;
                }
            }
        }
        3 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let fill: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(i..i, fill);
        }
        4 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            data.drain(i..i + n);
        }
        5 if len > 0 => {
            // Repeat a range.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            let piece = data[i..i + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, piece);
        }
        6 if !other.is_empty() => {
            // Splice a range of another input in.
            let i = rng.below(other.len());
            let n = 1 + rng.below((other.len() - i).min(256));
            let at = rng.below(len + 1);
            let end = (at + n).min(len);
            data.splice(at..end, other[i..i + n].iter().copied());
        }
        7 if len > 0 => data.truncate(rng.below(len)),
        8 if len > 0 => {
            // A disk sector, aligned, left zero (a torn write).
            let sectors = len.div_ceil(512);
            let s = rng.below(sectors) * 512;
            let end = (s + 512).min(len);
            data[s..end].fill(0);
        }
        9 if len > 1 => {
            // Copy a range over another place.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(32));
            let piece = data[i..i + n].to_vec();
            let at = rng.below(len);
            for (k, b) in piece.into_iter().enumerate() {
                if let Some(d) = data.get_mut(at + k) {
                    *d = b;
                }
            }
        }
        _ => {
            let i = rng.below(len + 1);
            data.insert(i, rng.next_u64() as u8);
        }
    }
}

/// A mutant of `seed`: one to eight stacked mutations.
pub fn mutant(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        mutate_once(rng, &mut data, other);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_deterministic_and_differ() {
        let seed = b"a seed of some length, for mutating".to_vec();
        let run = |s| {
            let mut rng = Rng::new(s);
            (0..50)
                .map(|_| mutant(&mut rng, &seed, b"other"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        assert!(run(3).iter().filter(|m| **m != seed).count() > 40);
    }
}
