//! sRGB → CIE Lab, as scikit-image's `rgb2lab` (D65 white point, 2° observer).
//!
//! Each pixel goes through: gamma expansion (`v > 0.04045 ? ((v + 0.055)/1.055)^2.4 :
//! v/12.92`), the linear-RGB → XYZ matrix, division by the white point
//! (0.95047, 1, 1.08883), the cube-root response (`t > 0.008856 ? ∛t : 7.787·t + 16/116`) and
//! `L = 116·f(Y) − 16`, `a = 500·(f(X) − f(Y))`, `b = 200·(f(Y) − f(Z))`. There is no
//! clipping: values outside [0, 1] go through the same formulas.
//!
//! The matrix product is evaluated as `fma(b, m₂, fma(g, m₁, r·m₀))`, the order OpenBLAS's
//! `dgemm` uses on x86-64 CPUs with FMA (which NumPy's `@` calls). The cube root is a
//! vectorised one of our own, within an ulp of the C library's `cbrt` (which itself is not
//! correctly rounded); values too large for it take `cbrt`. The results agree with
//! scikit-image's within 1e-12 (measured 1.7e-13 on values up to 100); other BLAS builds may
//! sum the matrix product in another order.
//!
//! ```
//! use ndarray::array;
//! use xai_lime::segment::color::rgb2lab;
//!
//! let white = array![[[1.0, 1.0, 1.0]]];
//! let lab = rgb2lab(white.view())?;
//! assert!((lab[[0, 0, 0]] - 100.0).abs() < 1e-3);
//! assert!(lab[[0, 0, 1]].abs() < 1e-2 && lab[[0, 0, 2]].abs() < 1e-2);
//! # Ok::<(), xai_lime::Error>(())
//! ```

use ndarray::{Array3, ArrayView3};
use rayon::prelude::*;
use xai_models::simd::vectorize;

use crate::{Error, Result};

/// sRGB (linear-RGB) → XYZ, the rows give X, Y and Z.
const XYZ_FROM_RGB: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];

/// The D65 white point for the 2° observer.
const WHITE_D65: [f64; 3] = [0.95047, 1.0, 1.08883];

/// Converts an `(height, width, 3)` RGB image with values in [0, 1] to CIE Lab.
///
/// Errors with [`Error::Shape`] when the image does not have 3 channels.
pub fn rgb2lab(image: ArrayView3<'_, f64>) -> Result<Array3<f64>> {
    let (h, w, c) = image.dim();
    if c != 3 {
        return Err(Error::Shape {
            what: "rgb2lab input".into(),
            actual: vec![h, w, c],
            expected: "(height, width, 3)".into(),
        });
    }
    let input: Vec<f64> = image.iter().copied().collect();
    let mut out = vec![0.0; input.len()];
    let table = GammaTable::new();
    // Rows in parallel; each pixel is converted on its own.
    out.par_chunks_mut(3 * w.max(1))
        .zip(input.par_chunks(3 * w.max(1)))
        .for_each_init(RowPlanes::default, |planes, (o, i)| {
            // With FMA the matrix's `mul_add`s are single instructions, not library calls.
            vectorize(
                #[inline(always)]
                || planes.convert_interleaved(i, o, |v| table.expand(v)),
            )
        });
    Array3::from_shape_vec((h, w, 3), out).map_err(|e| Error::Data(format!("rgb2lab: {e}")))
}

/// One pixel: sRGB in [0, 1] → Lab.
pub fn pixel_to_lab(rgb: [f64; 3]) -> [f64; 3] {
    linear_to_lab(rgb.map(gamma_expand), f64::cbrt)
}

/// sRGB gamma expansion of one channel value.
#[inline]
pub(crate) fn gamma_expand(v: f64) -> f64 {
    if v > 0.04045 {
        ((v + 0.055) / 1.055).powf(2.4)
    } else {
        v / 12.92
    }
}

/// What one pass over an image's values finds: whether all are finite, the smallest and
/// largest, and, when asked for, whether every value is an 8-bit level (`v == n · (1/255)` to
/// the bit, as `img_as_float` of an 8-bit image gives).
pub(crate) struct ValueScan {
    pub(crate) finite: bool,
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    /// Whether the `levels` given hold every value's level.
    pub(crate) levels: bool,
}

/// Scans `values` once, in parallel chunks compiled for the vector unit (extremes and levels do
/// not depend on the order they are taken in).
///
/// The levels, if asked for, are written into `levels` (the caller's memory: reused memory
/// spares the page faults of fresh memory); they are meaningful only where
/// [`ValueScan::levels`] says so.
pub(crate) fn scan_values(values: &[f64], levels: Option<&mut Vec<u8>>) -> ValueScan {
    const CHUNK: usize = 1 << 15;
    const LANES: usize = 8;
    let scale = 1.0 / 255.0;
    let want_levels = levels.is_some();
    let mut level_chunks: Vec<Option<&mut [u8]>> = if let Some(levels) = levels {
        // Every value is written below.
        super::resize_for_overwrite(levels, values.len());
        levels.chunks_mut(CHUNK).map(Some).collect()
    } else {
        values.chunks(CHUNK).map(|_| None).collect()
    };
    let (finite, lo, hi, exact) = values
        .par_chunks(CHUNK)
        .zip(level_chunks.par_iter_mut())
        .map(|(chunk, out)| {
            vectorize(
                #[inline(always)]
                || {
                    let finite = super::all_finite(chunk);
                    let mut lo = [f64::INFINITY; LANES];
                    let mut hi = [f64::NEG_INFINITY; LANES];
                    let mut lanes = chunk.chunks_exact(LANES);
                    for c in &mut lanes {
                        for l in 0..LANES {
                            lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
                            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
                        }
                    }
                    let last = lanes.remainder().iter();
                    let lo = lo
                        .iter()
                        .chain(last.clone())
                        .fold(f64::INFINITY, |a, &v| a.min(v));
                    let hi = hi
                        .iter()
                        .chain(last)
                        .fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                    let exact = match out {
                        Some(out) => {
                            // Nearest level (v·255 is within rounding of an integer for a
                            // level), clamped into u8's range; rounding is one instruction on
                            // the vector unit.
                            for (n, &v) in out.iter_mut().zip(chunk) {
                                *n = byte_of((v * 255.0).round_ties_even().clamp(0.0, 255.0));
                            }
                            chunk.chunks(64).zip(out.chunks(64)).all(|(v, n)| {
                                v.iter().zip(n).fold(true, |ok, (&v, &n)| {
                                    ok & ((f64::from(n) * scale).to_bits() == v.to_bits())
                                })
                            })
                        }
                        None => false,
                    };
                    (finite, lo, hi, exact)
                },
            )
        })
        .reduce(
            || (true, f64::INFINITY, f64::NEG_INFINITY, true),
            |(f0, lo0, hi0, e0), (f1, lo1, hi1, e1)| (f0 & f1, lo0.min(lo1), hi0.max(hi1), e0 & e1),
        );
    ValueScan {
        finite,
        lo,
        hi,
        levels: want_levels && exact,
    }
}

/// `x as u8` for an integer `x` in [0, 255] (anything for others): `x + 2⁵²` holds `x` in its
/// lowest bits. Integer operations that vectorise, where the saturating `as` conversion is
/// compiled lane by lane (two thirds of [`scan_values`]'s time).
#[inline(always)]
fn byte_of(x: f64) -> u8 {
    const TWO_52: f64 = (1u64 << 52) as f64;
    (x + TWO_52).to_bits() as u8
}

/// Lab of an `(height, width, 3)` image given by 8-bit levels, where level n of any channel
/// stands for the gamma-expanded value `lin[n]`: what [`rgb2lab`] gives for an image whose
/// values are functions of their level alone, with each expansion computed once per level.
pub(crate) fn levels_to_lab(
    levels: &[u8],
    (h, w): (usize, usize),
    lin: &[f64; 256],
) -> Result<Array3<f64>> {
    let mut out = vec![0.0; levels.len()];
    out.par_chunks_mut(3 * w.max(1))
        .zip(levels.par_chunks(3 * w.max(1)))
        .for_each_init(RowPlanes::default, |planes, (o, i)| {
            vectorize(
                #[inline(always)]
                || planes.convert_interleaved(i, o, |n| lin[usize::from(n)]),
            )
        });
    Array3::from_shape_vec((h, w, 3), out).map_err(|e| Error::Data(format!("rgb2lab: {e}")))
}

/// [`gamma_expand`] of the 256 values `n · (1/255)` that 8-bit images give (`img_as_float`),
/// looked up instead of calling `powf`: the same function of the same value, so the same
/// result. Any other value is computed.
struct GammaTable {
    lin: [f64; 256],
}

impl GammaTable {
    fn new() -> Self {
        let scale = 1.0 / 255.0;
        Self {
            lin: std::array::from_fn(|n| gamma_expand(n as f64 * scale)),
        }
    }

    #[inline(always)]
    fn expand(&self, v: f64) -> f64 {
        let n = (v * 255.0).round();
        if (0.0..=255.0).contains(&n) && (n * (1.0 / 255.0)).to_bits() == v.to_bits() {
            self.lin[n as usize]
        } else {
            gamma_expand(v)
        }
    }
}

/// One row's linear RGB, channel by channel (`lin`), and its Lab (`lab`, for interleaved
/// output): the conversion runs over whole planes, a loop the compiler vectorises.
#[derive(Default)]
struct RowPlanes {
    lin: [Vec<f64>; 3],
    lab: [Vec<f64>; 3],
}

impl RowPlanes {
    /// The row's `values` (interleaved RGB) expanded by `expand` into the `lin` planes.
    #[inline(always)]
    fn expand<T: Copy>(&mut self, values: &[T], expand: impl Fn(T) -> f64) {
        let n = values.len() / 3;
        for plane in &mut self.lin {
            plane.resize(n, 0.0);
        }
        let [r, g, b] = &mut self.lin;
        for (((px, r), g), b) in values.chunks_exact(3).zip(r).zip(g).zip(b) {
            (*r, *g, *b) = (expand(px[0]), expand(px[1]), expand(px[2]));
        }
    }

    /// The Lab of the interleaved RGB `values`, interleaved into `out`.
    #[inline(always)]
    fn convert_interleaved<T: Copy>(
        &mut self,
        values: &[T],
        out: &mut [f64],
        expand: impl Fn(T) -> f64,
    ) {
        self.expand(values, expand);
        let n = values.len() / 3;
        for plane in &mut self.lab {
            plane.resize(n, 0.0);
        }
        let [l, a, b] = &mut self.lab;
        lab_planes(&self.lin, [l, a, b], 1.0);
        for (((px, &l), &a), &b) in out.chunks_exact_mut(3).zip(&*l).zip(&*a).zip(&*b) {
            px.copy_from_slice(&[l, a, b]);
        }
    }
}

/// `wide` rounded to single precision into `narrow` (as long); returns the largest magnitude
/// in `wide` (0 if empty).
#[inline(always)]
pub(crate) fn narrow_with_bound(wide: &[f64], narrow: &mut [f32]) -> f64 {
    // Lane by lane: a single running maximum would keep the compiler from vectorising.
    const LANES: usize = 8;
    let mut bound = [0.0f64; LANES];
    let mut wide = wide.chunks_exact(LANES);
    let mut narrow = narrow.chunks_exact_mut(LANES);
    for (v, o) in (&mut wide).zip(&mut narrow) {
        for l in 0..LANES {
            o[l] = v[l] as f32;
            let a = v[l].abs();
            bound[l] = if a > bound[l] { a } else { bound[l] };
        }
    }
    for (v, o) in wide.remainder().iter().zip(narrow.into_remainder()) {
        *o = *v as f32;
        bound[0] = bound[0].max(v.abs());
    }
    bound.into_iter().fold(0.0, f64::max)
}

/// Linear RGB planes → Lab planes times `scale` (over the shortest of them), with the
/// vectorised [`cube_root`], or with the C library's `cbrt` where any value is outside its
/// range.
#[inline(always)]
fn lab_planes(lin: &[Vec<f64>; 3], out: [&mut [f64]; 3], scale: f64) {
    let in_range = lin
        .iter()
        .flatten()
        .fold(true, |ok, v| ok & (v.abs() <= CUBE_ROOT_INPUT_LIMIT));
    if in_range {
        convert_planes(lin, out, scale, cube_root);
    } else {
        convert_planes(lin, out, scale, f64::cbrt);
    }
}

/// [`lab_planes`] with `cbrt` for the cube root.
#[inline(always)]
fn convert_planes(
    lin: &[Vec<f64>; 3],
    [l, a, b]: [&mut [f64]; 3],
    scale: f64,
    cbrt: impl Fn(f64) -> f64 + Copy,
) {
    let pixels = lin[0].iter().zip(&lin[1]).zip(&lin[2]);
    for ((((&r, &g), &bl), l), (a, b)) in pixels.zip(l).zip(a.iter_mut().zip(b)) {
        let lab = linear_to_lab([r, g, bl], cbrt);
        (*l, *a, *b) = (lab[0] * scale, lab[1] * scale, lab[2] * scale);
    }
}

/// [`levels_to_lab`] written into `planes` (made three planes of `h` rows of `stride ≥ w`
/// values, 0 past `w`; their memory is reused), each Lab value multiplied by `scale` (SLIC's
/// `1 / compactness`).
///
/// With `narrow` (three such planes one after the other), the values are also written there
/// rounded to single precision, while each row is in the cache, and the largest magnitude is
/// returned (0 without).
pub(crate) fn levels_to_lab_planes(
    levels: &[u8],
    (h, w): (usize, usize),
    lin: &[f64; 256],
    (stride, scale): (usize, f64),
    planes: &mut Vec<Vec<f64>>,
    narrow: Option<&mut [f32]>,
) -> f64 {
    planes.resize_with(3, Vec::new);
    planes.truncate(3);
    for plane in planes.iter_mut() {
        super::resize_for_overwrite(plane, h * stride);
    }
    let [p0, p1, p2] = planes.as_mut_slice() else {
        return 0.0;
    };
    let stride = stride.max(1);
    // Rows of the narrow planes, or none.
    let narrow_rows: Vec<Option<[&mut [f32]; 3]>> = match narrow {
        Some(narrow) => {
            let (n0, rest) = narrow.split_at_mut(h * stride);
            let (n1, n2) = rest.split_at_mut(h * stride);
            n0.chunks_mut(stride)
                .zip(n1.chunks_mut(stride))
                .zip(n2.chunks_mut(stride))
                .map(|((a, b), c)| Some([a, b, c]))
                .collect()
        }
        None => (0..h).map(|_| None).collect(),
    };
    p0.par_chunks_mut(stride)
        .zip(p1.par_chunks_mut(stride))
        .zip(p2.par_chunks_mut(stride))
        .zip(levels.par_chunks(3 * w.max(1)))
        .zip(narrow_rows)
        .map_init(
            RowPlanes::default,
            |planes, ((((r0, r1), r2), i), narrow)| {
                vectorize(
                    #[inline(always)]
                    || {
                        planes.expand(i, |n| lin[usize::from(n)]);
                        lab_planes(&planes.lin, [&mut *r0, &mut *r1, &mut *r2], scale);
                        for r in [&mut *r0, &mut *r1, &mut *r2] {
                            let end = w.min(r.len());
                            r[end..].fill(0.0);
                        }
                        [&*r0, &*r1, &*r2]
                            .into_iter()
                            .zip(narrow.into_iter().flatten())
                            .map(|(wide, narrow)| narrow_with_bound(wide, narrow))
                            .fold(0.0, f64::max)
                    },
                )
            },
        )
        .reduce(|| 0.0, f64::max)
}

/// Linear RGB → Lab for one pixel, with `cbrt` for the cube-root response.
///
/// Written out without `std::array::from_fn`: whether its closure is inlined is the
/// compiler's choice, which changed with unrelated code, and out of line every `mul_add` in
/// the vectorised callers became a library call (SLIC's call took twice as long).
#[inline(always)]
fn linear_to_lab(lin: [f64; 3], cbrt: impl Fn(f64) -> f64 + Copy) -> [f64; 3] {
    #[inline(always)]
    fn response(lin: [f64; 3], k: usize, cbrt: impl Fn(f64) -> f64) -> f64 {
        let row = XYZ_FROM_RGB[k];
        let xyz = lin[2].mul_add(row[2], lin[1].mul_add(row[1], lin[0] * row[0]));
        let t = xyz / WHITE_D65[k];
        // Both sides are computed so the choice is a select, not a branch.
        let (root, linear) = (cbrt(t), 7.787 * t + 16.0 / 116.0);
        if t > 0.008856 {
            root
        } else {
            linear
        }
    }
    let f = [
        response(lin, 0, cbrt),
        response(lin, 1, cbrt),
        response(lin, 2, cbrt),
    ];
    [
        116.0 * f[1] - 16.0,
        500.0 * (f[0] - f[1]),
        200.0 * (f[1] - f[2]),
    ]
}

/// The largest linear value for which [`cube_root`] is accurate for every `t` that
/// [`linear_to_lab`] derives: |t| ≤ 3.3 · max |value|, far inside its range (NaN is not).
const CUBE_ROOT_INPUT_LIMIT: f64 = 1e90;

/// ∛t for positive normal `t` up to about 1e100, within an ulp of the exact value (as the C
/// library's `cbrt` is), in arithmetic that vectorises: no table, no call, no division. The
/// bits of `t` give a first guess at t^(−1/3) within 3.7 %; four Newton steps for
/// r⁻³ = t (r ← r · (4 − t·r³) / 3, each doubling the correct digits) make it exact to
/// rounding; ∛t = t·r², and one last Newton step in ∛t (y ← y − (y³ − t) · r² / 3, with y³ − t
/// from one fused multiply-add) leaves only the final rounding. Callers use the result only
/// where `t > 0.008856`.
#[inline(always)]
pub(crate) fn cube_root(t: f64) -> f64 {
    let mut r = f64::from_bits(large_integer_bits(cube_root_guess(t)));
    for _ in 0..4 {
        let r3 = r * r * r;
        r *= (-t).mul_add(r3, 4.0) * (1.0 / 3.0);
    }
    let y = t * r * r;
    let excess = (y * y).mul_add(y, -t);
    (-excess).mul_add(r * r * (1.0 / 3.0), y)
}

/// The bits of [`cube_root`]'s first guess at t^(−1/3), as a number: 4/3 of the bits of 1.0
/// (tuned for the smallest worst-case error) minus a third of the bits of `t`.
#[inline(always)]
fn cube_root_guess(t: f64) -> f64 {
    const GUESS_BIAS: f64 = 0x553F_0000_0000_0000u64 as f64;
    (t.to_bits() as i64 as f64).mul_add(-1.0 / 3.0, GUESS_BIAS)
}

/// `g as i64 as u64` for `g` in [2⁵², 2⁶³), where every `f64` is an integer: the mantissa with
/// its implicit bit, shifted by the exponent. Integer operations that vectorise, where the
/// saturating `as` conversion is compiled lane by lane (a third of the Lab conversion's time).
/// [`cube_root`]'s guesses lie in [2⁶¹, 2⁶³) for every `t`, NaN and infinities included.
#[inline(always)]
fn large_integer_bits(g: f64) -> u64 {
    const MANTISSA: u64 = (1 << 52) - 1;
    let bits = g.to_bits();
    let exponent = (bits >> 52) as u32;
    ((bits & MANTISSA) | (MANTISSA + 1)).wrapping_shl(exponent.wrapping_sub(1023 + 52))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_guesss_integer_is_the_conversions() {
        let mut ts: Vec<f64> = vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
        ];
        ts.extend([f64::MIN_POSITIVE, 5e-324, f64::MAX, 0.008856, 1.0, 1e100]);
        for e in -320..=308 {
            for m in [1.0, 1.7, 9.99] {
                ts.extend([m * 10f64.powi(e), -m * 10f64.powi(e)]);
            }
        }
        for bits in (0..=u64::MAX).step_by(0x0000_7777_7777_7777) {
            ts.push(f64::from_bits(bits));
        }
        for t in ts {
            let guess = cube_root_guess(t);
            assert!((2f64.powi(61)..2f64.powi(63)).contains(&guess), "t = {t:e}");
            assert_eq!(large_integer_bits(guess), guess as i64 as u64, "t = {t:e}");
        }
    }

    #[test]
    fn byte_of_is_the_conversion_for_bytes() {
        for n in 0..=255u8 {
            assert_eq!(byte_of(f64::from(n)), n);
        }
    }

    #[test]
    fn cube_root_is_within_an_ulp() {
        let ulps = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let mut worst = 0;
        // The range Lab uses (t in (0.008856, ~1]) densely, then far beyond it.
        for i in 0..200_000 {
            let t = 0.008856 + (i as f64) * (1.2 / 200_000.0);
            worst = worst.max(ulps(cube_root(t), t.cbrt()));
        }
        for e in -300..300 {
            for m in [1.0, 1.234_567, 1.5, 1.999_999_9] {
                let t = m * 10f64.powi(e) / 3.0;
                if t.is_normal() && t < 1e100 {
                    worst = worst.max(ulps(cube_root(t), t.cbrt()));
                }
            }
        }
        assert!(worst <= 1, "worst {worst} ulps");
        assert_eq!(cube_root(1.0), 1.0);
        assert_eq!(cube_root(8.0), 2.0);
        assert_eq!(cube_root(0.125), 0.5);
    }

    #[test]
    fn out_of_range_values_take_the_exact_path() {
        let image = Array3::from_shape_vec((1, 2, 3), vec![1e50, 0.5, 0.2, 0.1, 0.2, 0.3]).unwrap();
        let lab = rgb2lab(image.view()).unwrap();
        let expected = linear_to_lab([1e50, 0.5, 0.2].map(gamma_expand), f64::cbrt);
        assert_eq!(lab.as_slice().unwrap()[..3], expected);
        assert!(lab.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn levels_give_rgb2labs_bits() {
        // An 8-bit image in 3..=250, scaled to [0, 1] as SLIC scales it: every scaled value
        // is a function of its level, and most are not levels themselves.
        let (h, w) = (7, 11);
        let levels: Vec<u8> = (0..h * w * 3).map(|i| (3 + (i * 37) % 248) as u8).collect();
        let (lo, hi) = (3.0 / 255.0, 250.0 / 255.0);
        let scaled = |n: u8| (f64::from(n) * (1.0 / 255.0) - lo) / (hi - lo);
        let image =
            Array3::from_shape_vec((h, w, 3), levels.iter().map(|&n| scaled(n)).collect()).unwrap();
        let lin: [f64; 256] = std::array::from_fn(|n| gamma_expand(scaled(n as u8)));
        let a = levels_to_lab(&levels, (h, w), &lin).unwrap();
        let b = rgb2lab(image.view()).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        let plain: Vec<f64> = levels
            .iter()
            .map(|&n| f64::from(n) * (1.0 / 255.0))
            .collect();
        // A buffer of stale values, as between calls.
        let mut found = vec![7u8; 5];
        let scan = scan_values(&plain, Some(&mut found));
        assert!(scan.finite);
        assert_eq!((scan.lo, scan.hi), (lo, hi));
        assert!(scan.levels);
        assert_eq!(found, levels);
        assert!(!scan_values(&[0.5], Some(&mut found)).levels);
        assert!(!scan_values(&plain, None).levels);
        let many: Vec<f64> = (0..100_003)
            .map(|i| ((i * 7919) % 1000) as f64 - 500.5)
            .collect();
        let scan = scan_values(&many, Some(&mut found));
        assert_eq!(
            (scan.finite, scan.lo, scan.hi, scan.levels),
            (true, -500.5, 498.5, false)
        );
        let mut bad = many.clone();
        bad[77_777] = f64::NAN;
        assert!(!scan_values(&bad, None).finite);
    }
}
