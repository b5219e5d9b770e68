//! A small seeded PRNG: xoshiro256++ seeded through splitmix64.
//!
//! Written out here rather than taken from a crate so that nothing outside this file can change
//! the corpus: the same seed gives the same bytes for as long as this file stays the same. Only
//! integer arithmetic and exactly rounded float operations (`+ * /`, comparisons) are used, never
//! `ln`/`exp`/`powf`, whose last bits come from the platform's libm and may differ between systems.

/// One deterministic stream of pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

/// The splitmix64 step: spreads any 64-bit seed (even 0 or 1) over the whole state space.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// An independent stream for item `index` of kind `stream` under `seed`. Each session draws
    /// from its own stream, so what one session draws never shifts the next one.
    pub fn derive(seed: u64, stream: u64, index: u64) -> Self {
        let mut sm = seed ^ stream.rotate_left(32);
        let a = splitmix64(&mut sm);
        let mut sm = a ^ index;
        Rng::new(splitmix64(&mut sm))
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A number in `0..n` (`0` when `n` is 0). Multiply-shift: the bias is at most n/2^64.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// An index into a slice of `n` items.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A float in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// An index into `n` items skewed to the front (density ∝ 1/√i): a few items are drawn
    /// often, most rarely, as words in prose or projects in a user's history are.
    pub fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((u * u * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// An item of `items` drawn with the given integer weights.
    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < u64::from(*w) {
                return item;
            }
            x -= u64::from(*w);
        }
        &items[items.len() - 1].0
    }

    /// A heavy-tailed draw at least `scale`, at most `cap`: `scale · (1+u) · 2^G` with `G`
    /// geometric (each doubling taken with probability `q`). `P(X > scale·2^g) ≈ q^g`: a
    /// Pareto tail with exponent `log2(1/q)`, built from coin flips instead of `powf`.
    pub fn heavy(&mut self, scale: f64, q: f64, cap: f64) -> f64 {
        let mut x = scale * (1.0 + self.unit());
        while x < cap && self.chance(q) {
            x *= 2.0;
        }
        x.min(cap)
    }

    /// `n` lowercase hex digits.
    pub fn hex(&mut self, out: &mut String, n: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bits = 0u64;
        for i in 0..n {
            if i % 16 == 0 {
                bits = self.next_u64();
            }
            out.push(HEX[(bits & 15) as usize] as char);
            bits >>= 4;
        }
    }

    /// `n` characters of `[0-9A-Za-z]`, as in API message and request ids.
    pub fn base62(&mut self, out: &mut String, n: usize) {
        const ALPHABET: &[u8; 62] =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for _ in 0..n {
            out.push(ALPHABET[self.index(62)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = Rng::derive(7, 1, 0);
        let mut y = Rng::derive(7, 1, 1);
        assert_ne!(x.next_u64(), y.next_u64());
        // Pinned: a change here changes every corpus.
        assert_eq!(Rng::new(0).next_u64(), 0x53175d61490b23df);
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            assert!((3..=5).contains(&r.range(3, 5)));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let h = r.heavy(2.0, 0.5, 100.0);
            assert!((2.0..=100.0).contains(&h));
            assert!(r.skewed(5) < 5);
        }
    }
}
