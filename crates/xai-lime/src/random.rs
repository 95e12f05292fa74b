//! NumPy's legacy `RandomState`, so that a seeded run draws lime's exact sample matrix.
//!
//! lime draws its perturbations with `RandomState.randint(0, 2, size)`. With an integer
//! `random_state`, NumPy seeds MT19937 with Knuth's `init_genrand` and turns each 32-bit
//! output into one value by masking (rejecting values above the bound). Reproducing that here
//! means `LimeImageExplainer(random_state=s)` in Python and `seed = s` here perturb the same
//! superpixels, so explanations can be compared number for number, not only statistically.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A Mersenne Twister (MT19937) seeded and consumed the way NumPy's `RandomState(seed)` is.
///
/// ```
/// use xai_lime::random::NumpyRandomState;
/// // numpy: np.random.RandomState(0).randint(0, 1000) == 684
/// let mut rng = NumpyRandomState::new(0);
/// assert_eq!(rng.randint(1000), 684);
/// ```
#[derive(Clone)]
pub struct NumpyRandomState {
    state: [u32; N],
    next: usize,
}

impl std::fmt::Debug for NumpyRandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NumpyRandomState")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl NumpyRandomState {
    /// `np.random.RandomState(seed)` for an integer seed.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, next: N }
    }

    fn refill(&mut self) {
        let s = &mut self.state;
        for i in 0..N {
            let y = (s[i] & UPPER_MASK) | (s[(i + 1) % N] & LOWER_MASK);
            let mut v = s[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= MATRIX_A;
            }
            s[i] = v;
        }
        self.next = 0;
    }

    /// The next raw 32-bit output (MT19937's `genrand_int32`, tempered).
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= N {
            self.refill();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `randint(0, high)` for `1 ≤ high ≤ 2³²`: NumPy's masked rejection sampling.
    pub fn randint(&mut self, high: u64) -> u64 {
        let range = high.saturating_sub(1);
        if range == 0 {
            return 0;
        }
        let mask = u64::MAX >> range.leading_zeros();
        loop {
            let v = u64::from(self.next_u32()) & mask;
            if v <= range {
                return v;
            }
        }
    }

    /// `randint(0, 2, count)`: one output per value, its lowest bit.
    pub fn bits(&mut self, count: usize) -> Vec<bool> {
        (0..count).map(|_| self.next_u32() & 1 == 1).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_mersenne_twister() {
        // init_genrand(5489) is the reference implementation's default seed; its first
        // outputs are published with mt19937ar.c.
        let mut rng = NumpyRandomState::new(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
        assert_eq!(rng.next_u32(), 581_869_302);
        assert_eq!(rng.next_u32(), 3_890_346_734);
    }

    #[test]
    fn lime_draws_match_numpy() {
        // np.random.RandomState(3): randint(0, 1000), then randint(0, 2, 20).
        let mut rng = NumpyRandomState::new(3);
        assert_eq!(rng.randint(1000), 874);
        let bits: Vec<u8> = rng.bits(20).into_iter().map(u8::from).collect();
        assert_eq!(
            bits,
            [0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn randint_stays_in_range() {
        let mut rng = NumpyRandomState::new(7);
        for _ in 0..1000 {
            assert!(rng.randint(1000) < 1000);
        }
        assert_eq!(rng.randint(1), 0);
    }
}
