//! NumPy's default random stream, bit for bit: `np.random.default_rng(seed)`'s
//! `SeedSequence` → `PCG64` → `Generator.standard_normal` / `Generator.normal`.
//!
//! scikit-image ≥ 0.21's `quickshift` breaks density ties with
//! `np.random.default_rng(rng).normal(scale=1e-5, size=(H, W))` (LIME leaves `rng` at 42);
//! [`default_rng_normal`] returns that array exactly, so a port of quickshift can add the
//! same noise and find the same modes.
//!
//! The three pieces, as NumPy (1.17 and later, 2.x included) defines them:
//!
//! * [`SeedSequence`]: Melissa O'Neill's `seed_seq` replacement as NumPy implements it — the
//!   seed split into 32-bit words (lowest first), hashed into a pool of 4 words, every pool
//!   word mixed with every other, then [`SeedSequence::generate_state`] hashes the pool
//!   cyclically into as many 32-bit words as asked for.
//! * [`Pcg64`]: a 128-bit LCG with the XSL-RR output function (PCG-XSL-RR 128/64), seeded
//!   from 4 generated 64-bit words as `pcg64_set_seed` does: state from words 0–1,
//!   increment from words 2–3 (high word first), then `pcg_setseq_128_srandom_r`.
//! * [`standard_normal`]: the 256-layer ziggurat of Marsaglia & Tsang (*The ziggurat method
//!   for generating random variables*, J. Stat. Softw. 2000) with NumPy's layout of the 64
//!   bits (8 bits layer, 1 bit sign, 52 bits magnitude) and NumPy's tail and wedge tests.
//!   The tables are computed here from their definition ([`ZigguratTables`]), not copied.
//!
//! ```
//! use xai_lime::segment::numpy_rng::{default_rng_normal, Pcg64};
//!
//! // np.random.PCG64(42).random_raw(2)
//! let mut rng = Pcg64::new(42);
//! assert_eq!(rng.next_u64(), 14_276_969_152_011_380_360);
//! assert_eq!(rng.next_u64(), 8_095_878_257_575_067_585);
//!
//! // skimage.segmentation.quickshift's tie-breaking noise for a 4×5 image
//! let noise = default_rng_normal(42, 1e-5, (4, 5));
//! assert_eq!(noise.dim(), (4, 5));
//! ```

use std::sync::OnceLock;

use ndarray::Array2;

// ----------------------------------------------------------------------------------------
// SeedSequence
// ----------------------------------------------------------------------------------------

/// Words in the entropy pool (NumPy's default `pool_size`).
pub const POOL_SIZE: usize = 4;

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;

/// The hash of one word; `hash_const` is a running multiplier, advanced on every call.
fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut v = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    v = v.wrapping_mul(*hash_const);
    v ^ (v >> XSHIFT)
}

/// Combines two words into one.
fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> XSHIFT)
}

/// NumPy's `SeedSequence` for a given entropy, without spawn key and with a pool of
/// [`POOL_SIZE`] words: `np.random.SeedSequence(entropy)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSequence {
    pool: [u32; POOL_SIZE],
}

impl SeedSequence {
    /// `SeedSequence(seed)` for a non-negative integer seed.
    ///
    /// The seed is cut into 32-bit words, least significant first (`0` is the single word
    /// `0`; a seed below 2³² is one word).
    pub fn new(seed: u64) -> Self {
        let mut words = Vec::with_capacity(2);
        let mut n = seed;
        if n == 0 {
            words.push(0);
        }
        while n > 0 {
            words.push((n & 0xffff_ffff) as u32);
            n >>= 32;
        }
        Self::from_words(&words)
    }

    /// `SeedSequence(entropy)` for entropy already given as 32-bit words (what NumPy's
    /// `_coerce_to_uint32_array` makes of the entropy).
    pub fn from_words(entropy: &[u32]) -> Self {
        let mut pool = [0u32; POOL_SIZE];
        let mut hash_const = INIT_A;
        // The entropy up to the pool size; zeros past its end.
        for (i, p) in pool.iter_mut().enumerate() {
            *p = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
        }
        // Every word into every other, so that late words affect early ones.
        for src in 0..POOL_SIZE {
            for dst in 0..POOL_SIZE {
                if src != dst {
                    let h = hashmix(pool[src], &mut hash_const);
                    pool[dst] = mix(pool[dst], h);
                }
            }
        }
        // Entropy beyond the pool size, each word into every pool word.
        for &word in entropy.iter().skip(POOL_SIZE) {
            for p in pool.iter_mut() {
                let h = hashmix(word, &mut hash_const);
                *p = mix(*p, h);
            }
        }
        Self { pool }
    }

    /// The mixed entropy pool (`SeedSequence.pool`).
    pub fn pool(&self) -> [u32; POOL_SIZE] {
        self.pool
    }

    /// `generate_state(n_words)` with the default `dtype=np.uint32`.
    pub fn generate_state(&self, n_words: usize) -> Vec<u32> {
        let mut hash_const = INIT_B;
        self.pool
            .iter()
            .cycle()
            .take(n_words)
            .map(|&word| {
                let mut v = word ^ hash_const;
                hash_const = hash_const.wrapping_mul(MULT_B);
                v = v.wrapping_mul(hash_const);
                v ^ (v >> XSHIFT)
            })
            .collect()
    }

    /// `generate_state(n_words, np.uint64)`: `2 · n_words` 32-bit words, paired as
    /// little-endian 64-bit words (the first of each pair is the low half).
    pub fn generate_state_u64(&self, n_words: usize) -> Vec<u64> {
        self.generate_state(2 * n_words)
            .chunks_exact(2)
            .map(|pair| u64::from(pair[0]) | (u64::from(pair[1]) << 32))
            .collect()
    }
}

// ----------------------------------------------------------------------------------------
// PCG64
// ----------------------------------------------------------------------------------------

/// NumPy's `PCG64` bit generator: PCG-XSL-RR 128/64, a 128-bit LCG whose state is advanced
/// before each output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
}

impl Pcg64 {
    /// The LCG multiplier, PCG's default for 128-bit state
    /// (`PCG_DEFAULT_MULTIPLIER_128`).
    pub const MULTIPLIER: u128 = (2_549_297_995_355_413_924_u128 << 64) | 4_865_540_595_714_422_341;

    /// `np.random.PCG64(seed)`, the bit generator of `np.random.default_rng(seed)`.
    pub fn new(seed: u64) -> Self {
        Self::from_seed_sequence(&SeedSequence::new(seed))
    }

    /// `np.random.PCG64(seed_sequence)`: 4 64-bit words from the sequence; the initial state
    /// is `words[0] · 2⁶⁴ + words[1]`, the stream selector `words[2] · 2⁶⁴ + words[3]`.
    pub fn from_seed_sequence(seq: &SeedSequence) -> Self {
        let w = seq.generate_state_u64(4);
        let initstate = (u128::from(w[0]) << 64) | u128::from(w[1]);
        let initseq = (u128::from(w[2]) << 64) | u128::from(w[3]);
        Self::from_initstate(initstate, initseq)
    }

    /// PCG's `srandom_r(initstate, initseq)`: increment `2 · initseq + 1`, state 0, one step,
    /// add `initstate`, one more step.
    pub fn from_initstate(initstate: u128, initseq: u128) -> Self {
        let mut rng = Self {
            state: 0,
            inc: (initseq << 1) | 1,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(initstate);
        rng.step();
        rng
    }

    /// A generator in a given raw state, as `bit_generator.state = {"state": {"state": state,
    /// "inc": inc}, ...}` sets it. The increment is made odd.
    pub fn from_raw_state(state: u128, inc: u128) -> Self {
        Self {
            state,
            inc: inc | 1,
        }
    }

    /// The raw `(state, inc)` pair, as in `bit_generator.state["state"]`.
    pub fn raw_state(&self) -> (u128, u128) {
        (self.state, self.inc)
    }

    fn step(&mut self) {
        self.state = self
            .state
            .wrapping_mul(Self::MULTIPLIER)
            .wrapping_add(self.inc);
    }

    /// The next 64 random bits (`next_uint64`, what `random_raw` returns).
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let s = self.state;
        let xored = ((s >> 64) as u64) ^ (s as u64);
        xored.rotate_right((s >> 122) as u32)
    }

    /// A uniform double in `[0, 1)` from the top 53 bits of [`Pcg64::next_u64`]
    /// (`next_double`).
    pub fn next_double(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

// ----------------------------------------------------------------------------------------
// Ziggurat
// ----------------------------------------------------------------------------------------

/// Number of ziggurat layers.
pub const ZIGGURAT_LAYERS: usize = 256;

/// The start `r` of the tail: the right edge of the widest (bottom) layer,
/// 3.6541528853610087963519472518 rounded to `f64`.
pub const ZIGGURAT_NOR_R: f64 = 3.654_152_885_361_009;

/// `1 / r`, 0.27366123732975827203338247596 rounded to `f64`, as the sampler uses it in the
/// tail.
pub const ZIGGURAT_NOR_INV_R: f64 = 0.273_661_237_329_758_3;

/// The common area `v` of every layer (and of the base strip with the tail), under the
/// unnormalised density `exp(-x²/2)`: 0.0049286732339746519 rounded to `f64`.
pub const ZIGGURAT_NOR_AREA: f64 = 0.004_928_673_233_974_652;

/// The 256-layer ziggurat for `exp(-x²/2)`, as the sampler reads it.
///
/// Built from the definition: `x₂₅₅ = r`, and going down `x_{i-1} = f⁻¹(f(x_i) + v / x_i)`
/// with `f(x) = exp(-x²/2)`, `f⁻¹(y) = √(-2 ln y)`, down to `x₁`; `x₀ = 0`. Then, with
/// `2⁵²` the magnitude range,
///
/// * `ki[i] = round(2⁵² · x_{i-1} / x_i)` for `i ≥ 1` (so `ki[1] = 0`), and
///   `ki[0] = round(2⁵² · r f(r) / v)`: a magnitude below `ki[i]` is inside the core;
/// * `wi[i] = x_i / 2⁵²` for `i ≥ 1`, `wi[0] = (v / f(r)) / 2⁵²` (the base strip, stretched
///   so that its area is `v`);
/// * `fi[i] = f(x_i)`.
///
/// All in `f64` (correctly rounded `exp` and `ln`, as glibc's are at these arguments), with
/// round-half-to-even for `ki`, which is how NumPy's tables were made — with one exception,
/// [`NUMPY_DENSITY_ROUNDED_UP`]: NumPy's tables carry `f(x₃₈)` one unit in the last place
/// above the correctly rounded value (the exact value lies 0.498 ulp above the lower
/// neighbour, a near tie that the libm NumPy's tables were generated with rounded up). The
/// same value enters `fi[38]` and the step from `x₃₈` to `x₃₇`, and through that step every
/// layer above; with it, `ki`, `wi` and `fi` are NumPy's to the bit (the parity tests check
/// `ki` and `wi` against NumPy's sampler and the draws against NumPy's draws).
#[derive(Debug, Clone)]
pub struct ZigguratTables {
    /// Acceptance thresholds on the 52-bit magnitude.
    pub ki: [u64; ZIGGURAT_LAYERS],
    /// Width of each layer divided by `2⁵²`: magnitude × `wi` is the sample.
    pub wi: [f64; ZIGGURAT_LAYERS],
    /// Density at each layer's right edge.
    pub fi: [f64; ZIGGURAT_LAYERS],
}

/// The layer whose density `f(x_i)` NumPy's tables hold one ulp above the correctly rounded
/// value (see [`ZigguratTables`]).
pub const NUMPY_DENSITY_ROUNDED_UP: usize = 38;

fn density(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

impl ZigguratTables {
    /// Computes the tables (see the type's documentation).
    pub fn compute() -> Self {
        const N: usize = ZIGGURAT_LAYERS;
        let r = ZIGGURAT_NOR_R;
        let v = ZIGGURAT_NOR_AREA;
        let scale = 4_503_599_627_370_496.0; // 2^52
                                             // The density at a layer's right edge, as NumPy's tables have it.
        let f = |i: usize, x: f64| {
            let y = density(x);
            if i == NUMPY_DENSITY_ROUNDED_UP {
                // The next double up (y is positive and finite).
                f64::from_bits(y.to_bits() + 1)
            } else {
                y
            }
        };
        // Right edges from the bottom layer up, x[N-1] = r, ..., x[1], and x[0] = 0; fi along.
        let mut x = [0.0f64; N];
        let mut fi = [0.0f64; N];
        x[N - 1] = r;
        fi[N - 1] = f(N - 1, r);
        for i in (1..N - 1).rev() {
            x[i] = (-2.0 * (fi[i + 1] + v / x[i + 1]).ln()).sqrt();
            fi[i] = f(i, x[i]);
        }
        fi[0] = 1.0; // f(0)
        let mut ki = [0u64; N];
        let mut wi = [0.0f64; N];
        ki[0] = ((r * fi[N - 1]) / v * scale).round_ties_even() as u64;
        wi[0] = v / fi[N - 1] / scale;
        for i in 1..N {
            ki[i] = (x[i - 1] / x[i] * scale).round_ties_even() as u64;
            wi[i] = x[i] / scale;
        }
        Self { ki, wi, fi }
    }

    /// The tables, computed once.
    pub fn get() -> &'static Self {
        static TABLES: OnceLock<ZigguratTables> = OnceLock::new();
        TABLES.get_or_init(Self::compute)
    }
}

/// One standard normal draw, as NumPy's `Generator.standard_normal` makes it
/// (`random_standard_normal`).
///
/// Each try takes 64 bits: the low 8 pick the layer, the next one the sign, the 52 after
/// that the magnitude. Inside the layer's core (≈ 99 % of tries) the scaled magnitude is the
/// draw. In the base layer outside the core, the tail beyond `r` is sampled with Marsaglia's
/// exponential method (`1 − U` in the logarithms, so never `ln 0`); in the other layers the
/// wedge is accepted under the density or the whole try starts over.
pub fn standard_normal(rng: &mut Pcg64) -> f64 {
    let t = ZigguratTables::get();
    loop {
        let bits = rng.next_u64();
        let idx = (bits & 0xff) as usize;
        let r = bits >> 8;
        let negative = r & 1 == 1;
        let rabs = (r >> 1) & 0x000f_ffff_ffff_ffff;
        let mut x = rabs as f64 * t.wi[idx];
        if negative {
            x = -x;
        }
        if rabs < t.ki[idx] {
            return x;
        }
        if idx == 0 {
            loop {
                let xx = -ZIGGURAT_NOR_INV_R * (-rng.next_double()).ln_1p();
                let yy = -(-rng.next_double()).ln_1p();
                if yy + yy > xx * xx {
                    return if (rabs >> 8) & 1 == 1 {
                        -(ZIGGURAT_NOR_R + xx)
                    } else {
                        ZIGGURAT_NOR_R + xx
                    };
                }
            }
        } else if (t.fi[idx - 1] - t.fi[idx]) * rng.next_double() + t.fi[idx] < (-0.5 * x * x).exp()
        {
            return x;
        }
    }
}

/// `Generator.normal(loc, scale)` for one draw: `loc + scale · standard_normal`.
pub fn normal(rng: &mut Pcg64, loc: f64, scale: f64) -> f64 {
    loc + scale * standard_normal(rng)
}

/// `np.random.default_rng(seed).normal(loc=0, scale=scale, size=shape)`, bit for bit: the
/// draws in raster (C) order.
///
/// This is the tie-breaking noise of scikit-image's `quickshift` (`scale = 1e-5`, seed 42
/// unless given).
pub fn default_rng_normal(seed: u64, scale: f64, shape: (usize, usize)) -> Array2<f64> {
    let mut rng = Pcg64::new(seed);
    Array2::from_shape_simple_fn(shape, || normal(&mut rng, 0.0, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_sequence_42() {
        // np.random.SeedSequence(42).pool, .generate_state(4), .generate_state(2, np.uint64)
        let s = SeedSequence::new(42);
        assert_eq!(
            s.pool(),
            [0x631d_3606, 0x07ae_90ae, 0x6fc4_be28, 0x2ced_5c75]
        );
        assert_eq!(
            s.generate_state(4),
            [0xcd54_0ab7, 0x9f1e_2e6d, 0x79fb_94b6, 0xd578_73dc]
        );
        assert_eq!(
            s.generate_state_u64(2),
            [0x9f1e_2e6d_cd54_0ab7, 0xd578_73dc_79fb_94b6]
        );
    }

    #[test]
    fn pcg64_seeded_state() {
        // np.random.PCG64(42).state["state"]
        let (state, inc) = Pcg64::new(42).raw_state();
        assert_eq!(state, 274_674_114_334_540_486_603_088_602_300_644_985_544);
        assert_eq!(inc, 332_724_090_758_049_132_448_979_897_138_935_081_983);
    }

    #[test]
    fn standard_normal_42() {
        // np.random.default_rng(42).standard_normal(4).view(np.uint64)
        let mut rng = Pcg64::new(42);
        let bits: Vec<u64> = (0..4)
            .map(|_| standard_normal(&mut rng).to_bits())
            .collect();
        assert_eq!(
            bits,
            [
                0x3fd3_807c_1104_fc6b,
                0xbff0_a3c6_5fca_9a7e,
                0x3fe8_03b2_39e7_7350,
                0x3fee_191b_2d15_7f36
            ]
        );
    }

    #[test]
    fn quickshift_noise_2x2() {
        // np.random.default_rng(42).normal(scale=1e-5, size=(2, 2)).view(np.uint64)
        let a = default_rng_normal(42, 1e-5, (2, 2));
        let bits: Vec<u64> = a.iter().map(|v| v.to_bits()).collect();
        assert_eq!(
            bits,
            [
                0x3ec9_8fbf_dca2_d6b0,
                0xbee5_cf5f_459a_b7fc,
                0x3edf_79e8_8a27_bf88,
                0x3ee3_b99e_4d8d_256a
            ]
        );
    }

    #[test]
    fn tail_draws_seed_7() {
        // np.random.default_rng(7).standard_normal(5000)[[2311, 4657]]: beyond r = 3.654,
        // so from the tail branch.
        let mut rng = Pcg64::new(7);
        let z: Vec<f64> = (0..5000).map(|_| standard_normal(&mut rng)).collect();
        assert_eq!(z[2311].to_bits(), 0xc00d_49e5_4296_8c99); // -3.661081810206792
        assert_eq!(z[4657].to_bits(), 0x4010_3f15_b985_e889); // 4.06160631065189
        let beyond: Vec<usize> = (0..z.len())
            .filter(|&i| z[i].abs() > ZIGGURAT_NOR_R)
            .collect();
        assert_eq!(beyond, [2311, 4657]);
    }

    #[test]
    fn table_shape() {
        let t = ZigguratTables::get();
        // ki[1] = 0: layer 1 (the top cap) has no core.
        assert_eq!(t.ki[1], 0);
        assert_eq!(t.fi[0], 1.0);
        assert_eq!(t.wi[255], ZIGGURAT_NOR_R / 4_503_599_627_370_496.0);
        // Right edges grow, layer by layer, towards r.
        assert!(t.wi[1..].windows(2).all(|w| w[0] < w[1]));
        assert!(t.fi.windows(2).all(|w| w[0] > w[1]));
        assert!(t.ki.iter().all(|&k| k < 1 << 52));
    }
}
