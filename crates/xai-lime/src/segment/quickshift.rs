//! Quickshift: mode seeking in the joint colour–position space.
//!
//! Vedaldi, A. and Soatto, S., *Quick shift and kernel methods for mode seeking*, ECCV 2008;
//! with scikit-image's `skimage.segmentation.quickshift` semantics (0.19–0.26).

use ndarray::{Array2, ArrayView2, ArrayView3};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_at_least, check_image, check_rgb, color, gaussian, rank_roots, Segmenter};
use crate::{Error, Result};

/// Quickshift superpixels, as `skimage.segmentation.quickshift`.
///
/// The image is converted to Lab (when `convert2lab`), smoothed with a Gaussian of `sigma`,
/// and its colours are multiplied by `ratio`. Each pixel's density is a Parzen estimate
/// `Σ_q exp(−D(p, q) / (2·kernel_size²))` over a window of half-size ⌈3·kernel_size⌉, where
/// `D` is the squared distance in (colour, row, column) space, plus a tiny noise that breaks
/// ties. Each pixel links to the closest window pixel of higher density, unless that is
/// farther than `max_dist`; the trees of links are the segments, numbered by the raster
/// position of their root (the mode).
///
/// The defaults are LIME's (`kernel_size=4, max_dist=200, ratio=0.2`), not scikit-image's
/// (`5, 10, 1.0`).
///
/// Speed: each pair's kernel term is computed once for both pixels, with a vectorised `exp`,
/// rows run in parallel, and the parent search stops at rows farther than the best candidate;
/// comparisons that the faster `exp` could flip are redone exactly (see the source), so the
/// labels stay scikit-image's.
///
/// The noise is N(0, 10⁻⁵) per pixel, drawn in raster order from [`rand::rngs::StdRng`]
/// seeded with `seed` (Box–Muller on two uniforms per draw). scikit-image draws it from
/// NumPy's `default_rng(42)`; to reproduce its labels exactly, pass that noise to
/// [`Quickshift::segment_with_noise`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quickshift {
    /// Width (σ) of the Gaussian density kernel; larger gives fewer segments. At least 1.
    pub kernel_size: f64,
    /// Links longer than this (in the scaled colour–position space) are cut.
    pub max_dist: f64,
    /// Weight of colour against position, usually in [0, 1]: colours are multiplied by it.
    pub ratio: f64,
    /// σ of the Gaussian smoothing before segmenting; 0 for none.
    pub sigma: f64,
    /// Convert the (RGB) image to CIE Lab first.
    pub convert2lab: bool,
    /// Seed of the tie-breaking noise.
    pub seed: u64,
}

impl Default for Quickshift {
    fn default() -> Self {
        Self {
            kernel_size: 4.0,
            max_dist: 200.0,
            ratio: 0.2,
            sigma: 0.0,
            convert2lab: true,
            seed: 42,
        }
    }
}

impl Quickshift {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        check_at_least("kernel_size", self.kernel_size, 1.0)?;
        if self.max_dist.is_nan() || self.max_dist < 0.0 {
            return Err(Error::param(
                "max_dist",
                format!("must be >= 0 (or infinite), got {}", self.max_dist),
            ));
        }
        if !self.ratio.is_finite() {
            return Err(Error::param(
                "ratio",
                format!("must be finite, got {}", self.ratio),
            ));
        }
        check_at_least("sigma", self.sigma, 0.0)
    }

    /// The tie-breaking noise for an image of `shape`: N(0, 10⁻⁵) from `seed`, raster order.
    pub fn noise(&self, shape: (usize, usize)) -> Array2<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        Array2::from_shape_simple_fn(shape, || {
            // Box–Muller: u1 in (0, 1] keeps the logarithm finite.
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            1e-5 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
    }

    /// Segments with the given tie-breaking `noise` (one value per pixel) instead of the one
    /// drawn from `seed`: with NumPy's `default_rng(42).normal(scale=1e-5, size=(H, W))`
    /// the labels are exactly scikit-image's.
    pub fn segment_with_noise(
        &self,
        image: ArrayView3<'_, f64>,
        noise: ArrayView2<'_, f64>,
    ) -> Result<Array2<i32>> {
        self.validate()?;
        check_image(&image, "quickshift")?;
        let (h, w, _) = image.dim();
        if noise.dim() != (h, w) {
            return Err(Error::Shape {
                what: "quickshift noise".into(),
                actual: noise.shape().to_vec(),
                expected: format!("the image's ({h}, {w})"),
            });
        }
        if let Some(v) = noise.iter().find(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "quickshift: the noise holds a non-finite value ({v})"
            )));
        }
        let mut feat = if self.convert2lab {
            check_rgb(&image, "quickshift")?;
            color::rgb2lab(image)?
        } else {
            image.as_standard_layout().into_owned()
        };
        gaussian::filter_axis(&mut feat, ndarray::Axis(0), self.sigma);
        gaussian::filter_axis(&mut feat, ndarray::Axis(1), self.sigma);
        feat.mapv_inplace(|v| v * self.ratio);
        let channels = feat.dim().2;
        let data: Vec<f64> = feat.iter().copied().collect();
        let noise: Vec<f64> = noise.iter().copied().collect();
        let roots = match channels {
            3 => Core::<3>::new(&data, h, w, self.kernel_size).run(&noise, self.max_dist),
            1 => Core::<1>::new(&data, h, w, self.kernel_size).run(&noise, self.max_dist),
            c => CoreDyn::new(&data, h, w, c, self.kernel_size).run(&noise, self.max_dist),
        };
        Ok(rank_roots(&roots, (h, w)))
    }
}

impl Segmenter for Quickshift {
    fn name(&self) -> &'static str {
        "quickshift"
    }

    fn segment(&self, image: ArrayView3<'_, f64>) -> Result<Array2<i32>> {
        self.validate()?;
        check_image(&image, "quickshift")?;
        let (h, w, _) = image.dim();
        let noise = self.noise((h, w));
        self.segment_with_noise(image, noise.view())
    }
}

/// The window of pixel `i` along an axis of length `n`: `max(i−k, 0)..min(i+k+1, n)`.
#[inline]
fn window(i: usize, k: usize, n: usize) -> std::ops::Range<usize> {
    i.saturating_sub(k)..(i + k + 1).min(n)
}

/// Quickshift on scaled features with a compile-time channel count.
struct Core<const C: usize> {
    px: Vec<[f64; C]>,
    /// The same features, one plane per channel (for the vectorised kernel terms).
    planes: Vec<Vec<f64>>,
    h: usize,
    w: usize,
    k: usize,
    inv: f64,
}

impl<const C: usize> Core<C> {
    fn new(data: &[f64], h: usize, w: usize, kernel_size: f64) -> Self {
        let px = data
            .chunks_exact(C)
            .map(|c| {
                let mut p = [0.0; C];
                p.copy_from_slice(c);
                p
            })
            .collect();
        let planes = (0..C)
            .map(|ch| data.iter().skip(ch).step_by(C).copied().collect())
            .collect();
        Self {
            px,
            planes,
            h,
            w,
            k: half_window(kernel_size, h, w),
            inv: -0.5 / (kernel_size * kernel_size),
        }
    }

    /// Squared distance in scikit-image's order: channels, then rows, then columns.
    #[inline(always)]
    fn dist(&self, p: &[f64; C], q: &[f64; C], dr: f64, dc: f64) -> f64 {
        let mut d = 0.0;
        for c in 0..C {
            let t = p[c] - q[c];
            d += t * t;
        }
        d += dr * dr;
        d += dc * dc;
        d
    }

    /// The densities, straight from the definition: each pixel sums its window in raster
    /// order with the C library's `exp`. The reference for [`Core::densities`] in the tests,
    /// and the fallback when its ring of kernel terms would not fit in memory.
    fn densities_direct(&self, noise: &[f64]) -> Vec<f64> {
        let (h, w, k) = (self.h, self.w, self.k);
        let mut dens = noise.to_vec();
        dens.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
            for (c, d) in row.iter_mut().enumerate() {
                let p = &self.px[r * w + c];
                let mut acc = *d;
                for r2 in window(r, k, h) {
                    let dr = r as f64 - r2 as f64;
                    for c2 in window(c, k, w) {
                        let dc = c as f64 - c2 as f64;
                        acc += (self.dist(p, &self.px[r2 * w + c2], dr, dc) * self.inv).exp();
                    }
                }
                *d = acc;
            }
        });
        dens
    }

    /// The size of [`Core::densities`]' ring of kernel terms, in bytes (saturating).
    fn ring_bytes(&self) -> usize {
        let k = self.k.min(self.h.max(self.w));
        let slots = (2 * k + 1).saturating_mul(k).saturating_add(k + 1);
        (k + 1)
            .min(self.h)
            .saturating_mul(slots)
            .saturating_mul(self.w)
            .saturating_mul(8)
    }

    /// The densities with half the `exp` calls, `exp` applied in place to slices of arguments:
    /// with [`exp_libm`] they are bit-identical to [`Core::densities_direct`] (a test checks
    /// it); [`Core::run`] uses [`exp_fast`].
    ///
    /// The kernel term of a pair is symmetric to the bit (`(a−b)² = (b−a)²`, same order of
    /// additions), so each pair is evaluated once, from the pixel that comes first in raster
    /// order: for every pixel the "forward" offsets (same row to the right, rows below) are
    /// stored per row in a ring of k+1 rows, laid out `[slot][column]`. A row of densities then
    /// adds, offset by offset in raster order, one contiguous slice per offset, so every pixel
    /// still sums its own window in scikit-image's order.
    fn densities(&self, noise: &[f64], exp: fn(&mut [f64])) -> Vec<f64> {
        let (h, w, k) = (self.h, self.w, self.k);
        let k = k.min(h.max(w));
        let span = 2 * k + 1;
        let slots = k + 1 + k * span;
        let slot = |dr: usize, dc: isize| -> usize {
            if dr == 0 {
                dc as usize
            } else {
                k + 1 + (dr - 1) * span + (dc + k as isize) as usize
            }
        };
        let ring_rows = (k + 1).min(h);
        let row_len = slots * w;
        let mut ring = vec![0.0f64; ring_rows * row_len];
        let mut dens = noise.to_vec();
        // Column chunks for the density pass (each pixel's order does not depend on them).
        let chunk = w.div_ceil(rayon::current_num_threads().max(1) * 2).max(16);
        for r in 0..h {
            // 1. Forward terms of row r.
            let base = (r % ring_rows) * row_len;
            ring[base..base + row_len]
                .par_chunks_mut(w)
                .enumerate()
                .for_each(|(s, out)| {
                    let (dr, dc) = if s <= k {
                        (0usize, s as isize)
                    } else {
                        let t = s - (k + 1);
                        (t / span + 1, (t % span) as isize - k as isize)
                    };
                    let r2 = r + dr;
                    if r2 >= h {
                        return;
                    }
                    let (lo, hi) = col_range(dc, w);
                    if lo >= hi {
                        return;
                    }
                    let (pb, qb) = (r * w, r2 * w);
                    let fr = -(dr as f64);
                    let fc = -(dc as f64);
                    let spatial = (fr * fr, fc * fc);
                    let out = &mut out[lo..hi];
                    out.fill(0.0);
                    // Channels first, then rows, then columns: scikit-image's order.
                    for plane in &self.planes {
                        let pp = &plane[pb + lo..pb + hi];
                        let qq = &plane[(qb as isize + lo as isize + dc) as usize..][..hi - lo];
                        for ((o, a), b) in out.iter_mut().zip(pp).zip(qq) {
                            let t = a - b;
                            *o += t * t;
                        }
                    }
                    for o in out.iter_mut() {
                        *o = ((*o + spatial.0) + spatial.1) * self.inv;
                    }
                    exp(out);
                });
            // 2. Densities of row r, offset by offset in raster order.
            let ring_ro = &ring;
            dens[r * w..(r + 1) * w]
                .par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(ci, acc)| {
                    let c0 = ci * chunk;
                    let c1 = c0 + acc.len();
                    for or in -(k as isize)..=(k as isize) {
                        let r2 = r as isize + or;
                        if r2 < 0 || r2 >= h as isize {
                            continue;
                        }
                        for oc in -(k as isize)..=(k as isize) {
                            // The stored row and slot holding e(p, p + (or, oc)), and the
                            // column shift from p to the pixel that stored it.
                            let (row, s, shift) = if or < 0 || (or == 0 && oc < 0) {
                                (r2 as usize, slot((-or) as usize, -oc), oc)
                            } else {
                                (r, slot(or as usize, oc), 0)
                            };
                            let (lo, hi) = col_range(oc, w);
                            let (lo, hi) = (lo.max(c0), hi.min(c1));
                            if lo >= hi {
                                continue;
                            }
                            let src = &ring_ro[(row % ring_rows) * row_len + s * w..][..w];
                            let from = (lo as isize + shift) as usize;
                            for (a, e) in acc[lo - c0..hi - c0].iter_mut().zip(&src[from..]) {
                                *a += e;
                            }
                        }
                    }
                });
        }
        dens
    }

    /// One pixel's density exactly as scikit-image computes it (its window in raster order,
    /// the C library's `exp`).
    fn density_exact(&self, i: usize, noise: f64) -> f64 {
        let (h, w, k) = (self.h, self.w, self.k);
        let (r, c) = (i / w, i % w);
        let p = &self.px[i];
        let mut acc = noise;
        for r2 in window(r, k, h) {
            let dr = r as f64 - r2 as f64;
            for c2 in window(c, k, w) {
                let dc = c as f64 - c2 as f64;
                acc += (self.dist(p, &self.px[r2 * w + c2], dr, dc) * self.inv).exp();
            }
        }
        acc
    }

    /// The parent of pixel `i` (and its squared distance) from the fast densities, or `None`
    /// when a comparison is too close to call within the bounds. Each window row is one
    /// vectorisable pass (distances of the higher pixels, +∞ for the others) and a first-minimum
    /// search, which picks the same pixel as scikit-image's raster scan with a strict `<`.
    #[inline]
    fn parent_fast(
        &self,
        i: usize,
        dens: &[f64],
        bound: &[f64],
        scratch: &mut Vec<f64>,
    ) -> Option<(usize, f64)> {
        let (h, w, k) = (self.h, self.w, self.k);
        let (r, c) = (i / w, i % w);
        let p = &self.px[i];
        let (cur, bi) = (dens[i], bound[i]);
        let mut closest = f64::MAX;
        let mut best = i;
        let mut unsure = false;
        let cols = window(c, k, w);
        let n = cols.len();
        scratch.resize(n, 0.0);
        // Rows by increasing |Δrow| (r, r−1, r+1, r−2, …): a row with Δrow² ≥ the closest
        // distance so far cannot hold the parent (every distance there is ≥ Δrow²), so the
        // scan stops early; equal distances go to the smaller raster index, as in a raster scan.
        let rows = window(r, k, h);
        for step in 0..=2 * k {
            let off = (step as isize + 1) / 2 * if step % 2 == 1 { -1 } else { 1 };
            let r2 = r as isize + off;
            if r2 < rows.start as isize || r2 >= rows.end as isize {
                continue;
            }
            let r2 = r2 as usize;
            let dr = r as f64 - r2 as f64;
            let dr2 = dr * dr;
            if dr2 >= closest {
                break;
            }
            let base = r2 * w + cols.start;
            let dj = &dens[base..base + n];
            let bj = &bound[base..base + n];
            let qs = &self.px[base..base + n];
            let own = if r2 == r { c - cols.start } else { usize::MAX };
            let mut dc = c as f64 - cols.start as f64;
            for (t, ((out, (&d_j, &b_j)), q)) in scratch
                .iter_mut()
                .zip(dj.iter().zip(bj))
                .zip(qs)
                .enumerate()
            {
                let diff = d_j - cur;
                let margin = 1.000_001 * (bi + b_j);
                unsure |= (diff.abs() <= margin) & (t != own);
                let mut d = 0.0;
                for ch in 0..C {
                    let tt = p[ch] - q[ch];
                    d += tt * tt;
                }
                d += dr2;
                d += dc * dc;
                dc -= 1.0;
                *out = if diff > margin { d } else { f64::INFINITY };
            }
            let row_min = scratch.iter().fold(f64::INFINITY, |m, &v| m.min(v));
            if row_min <= closest && row_min < f64::INFINITY {
                let t = scratch.iter().position(|&v| v == row_min).unwrap_or(0);
                if row_min < closest || base + t < best {
                    closest = row_min;
                    best = base + t;
                }
            }
        }
        (!unsure).then_some((best, closest))
    }

    /// [`Core::parent_fast`] for the rare pixel whose comparisons need exact densities.
    #[cold]
    fn parent_exact(&self, i: usize, dens: &[f64], bound: &[f64], noise: &[f64]) -> (usize, f64) {
        let (h, w, k) = (self.h, self.w, self.k);
        let (r, c) = (i / w, i % w);
        let p = &self.px[i];
        let cur = dens[i];
        let mut cur_exact: Option<f64> = None;
        let mut closest = f64::MAX;
        let mut best = i;
        for r2 in window(r, k, h) {
            let dr = r as f64 - r2 as f64;
            for c2 in window(c, k, w) {
                let j = r2 * w + c2;
                let diff = dens[j] - cur;
                let margin = 1.000_001 * (bound[i] + bound[j]);
                let higher = if j == i {
                    false
                } else if diff > margin {
                    true
                } else if diff < -margin {
                    false
                } else {
                    let e = *cur_exact.get_or_insert_with(|| self.density_exact(i, noise[i]));
                    self.density_exact(j, noise[j]) > e
                };
                if higher {
                    let d = self.dist(p, &self.px[j], dr, c as f64 - c2 as f64);
                    if d < closest {
                        closest = d;
                        best = j;
                    }
                }
            }
        }
        (best, closest)
    }

    /// The roots of every pixel's tree, exactly as scikit-image finds them.
    ///
    /// The labels depend on the densities only through comparisons `dens[q] > dens[p]`, so
    /// the densities are computed with [`exp_fast`] (vectorised, relative error below
    /// [`EXP_FAST_REL_ERR`]) and each gets a bound on its distance from scikit-image's value:
    /// both sums are within `(n−1)·u·Σ|terms|` of the exact sum of `n` terms, and their terms
    /// differ by at most the two `exp` errors. A comparison whose difference is not larger than
    /// the two bounds is redone with both densities recomputed as scikit-image does
    /// ([`Core::density_exact`]); on photos that never happens, as densities differ by at least
    /// the 1e-5 noise. The labels are therefore the same as with the C library's `exp`.
    fn run(&self, noise: &[f64], max_dist: f64) -> Vec<usize> {
        let (h, w) = (self.h, self.w);
        let dens = if self.ring_bytes() <= RING_BYTES_MAX {
            self.densities(noise, exp_fast)
        } else {
            self.densities_direct(noise)
        };
        let terms = ((2 * self.k + 1).pow(2) + 1) as f64;
        let rel = EXP_FAST_REL_ERR + 2.2 * terms * f64::EPSILON / 2.0;
        let bound: Vec<f64> = dens
            .iter()
            .zip(noise)
            .map(|(d, n)| rel * (d.abs() + 2.0 * n.abs()) + terms * 1e-300)
            .collect();
        // Parents: the closest window pixel of strictly higher density (first wins ties).
        // Densities closer than their bounds are recomputed exactly before comparing.
        let mut parent: Vec<usize> = (0..h * w).collect();
        parent
            .par_chunks_mut(w)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (r, row)| {
                for (c, par) in row.iter_mut().enumerate() {
                    let i = r * w + c;
                    let (best, closest) = match self.parent_fast(i, &dens, &bound, scratch) {
                        Some(found) => found,
                        None => self.parent_exact(i, &dens, &bound, noise),
                    };
                    *par = if closest.sqrt() > max_dist { i } else { best };
                }
            });
        flatten(parent)
    }
}

/// Quickshift for any channel count (the rare case: no Lab, not 1 or 3 channels).
struct CoreDyn<'a> {
    data: &'a [f64],
    h: usize,
    w: usize,
    ch: usize,
    k: usize,
    inv: f64,
}

impl<'a> CoreDyn<'a> {
    fn new(data: &'a [f64], h: usize, w: usize, ch: usize, kernel_size: f64) -> Self {
        Self {
            data,
            h,
            w,
            ch,
            k: half_window(kernel_size, h, w),
            inv: -0.5 / (kernel_size * kernel_size),
        }
    }

    fn dist(&self, i: usize, j: usize, dr: f64, dc: f64) -> f64 {
        let p = &self.data[i * self.ch..(i + 1) * self.ch];
        let q = &self.data[j * self.ch..(j + 1) * self.ch];
        let mut d = 0.0;
        for (a, b) in p.iter().zip(q) {
            let t = a - b;
            d += t * t;
        }
        d += dr * dr;
        d += dc * dc;
        d
    }

    fn run(&self, noise: &[f64], max_dist: f64) -> Vec<usize> {
        let (h, w, k) = (self.h, self.w, self.k);
        let mut dens = noise.to_vec();
        dens.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
            for (c, d) in row.iter_mut().enumerate() {
                let mut acc = *d;
                for r2 in window(r, k, h) {
                    for c2 in window(c, k, w) {
                        let dd = self.dist(
                            r * w + c,
                            r2 * w + c2,
                            r as f64 - r2 as f64,
                            c as f64 - c2 as f64,
                        );
                        acc += (dd * self.inv).exp();
                    }
                }
                *d = acc;
            }
        });
        let mut parent: Vec<usize> = (0..h * w).collect();
        parent.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
            for (c, par) in row.iter_mut().enumerate() {
                let i = r * w + c;
                let mut closest = f64::MAX;
                let mut best = i;
                for r2 in window(r, k, h) {
                    for c2 in window(c, k, w) {
                        let j = r2 * w + c2;
                        if dens[j] > dens[i] {
                            let d = self.dist(i, j, r as f64 - r2 as f64, c as f64 - c2 as f64);
                            if d < closest {
                                closest = d;
                                best = j;
                            }
                        }
                    }
                }
                if closest.sqrt() > max_dist {
                    best = i;
                }
                *par = best;
            }
        });
        flatten(parent)
    }
}

/// The largest ring of kernel terms [`Core::densities`] may allocate; wider windows or images
/// use [`Core::densities_direct`] (same labels, slower).
const RING_BYTES_MAX: usize = 512 << 20;

/// `exp` of the C library, in place: what scikit-image calls.
#[cfg_attr(not(test), allow(dead_code))]
fn exp_libm(xs: &mut [f64]) {
    for x in xs {
        *x = x.exp();
    }
}

/// An upper bound on the relative error of [`exp_fast`] against the exact `exp` for
/// arguments ≤ 0 (measured: under 3e-16; see the tests).
const EXP_FAST_REL_ERR: f64 = 2e-15;

/// A branch-free `exp` for arguments ≤ 0 that the compiler vectorises: `2^k · p(r)` with
/// `r = x − k·ln 2` (Cody–Waite) and the degree-13 Taylor polynomial of `exp(r)`,
/// |r| ≤ ln 2 / 2. Arguments below −708 are clamped (the absolute error is < 1e-307).
fn exp_fast(xs: &mut [f64]) {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const SHIFT: f64 = 6755399441055744.0; // 1.5 · 2⁵²: adding it rounds to an integer
                                           // ln 2 split in two: LN2_HI has 32 significant bits, so k·LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const C: [f64; 14] = {
        let mut c = [1.0; 14];
        let mut i = 1;
        while i < 14 {
            c[i] = c[i - 1] / i as f64;
            i += 1;
        }
        c
    };
    #[inline(always)]
    fn one(v: f64) -> f64 {
        let x = v.max(-708.0);
        let kd = x * LOG2E + SHIFT;
        let k = kd.to_bits() << 52; // the low bits of kd hold k; shifted into the exponent
        let kf = kd - SHIFT;
        let r = (x - kf * LN2_HI) - kf * LN2_LO;
        let mut p = C[13];
        for &ci in C[..13].iter().rev() {
            p = p * r + ci;
        }
        f64::from_bits(p.to_bits().wrapping_add(k))
    }
    // Eight independent lanes per step, so the Horner chains overlap.
    let mut chunks = xs.chunks_exact_mut(8);
    for ch in &mut chunks {
        for v in ch.iter_mut() {
            *v = one(*v);
        }
    }
    for v in chunks.into_remainder() {
        *v = one(*v);
    }
}

/// The columns c with c + offset inside `0..w`.
#[inline]
fn col_range(offset: isize, w: usize) -> (usize, usize) {
    let lo = (-offset).max(0) as usize;
    let hi = (w as isize - offset.max(0)).max(0) as usize;
    (lo.min(w), hi)
}

/// ⌈3·kernel_size⌉, capped at the image size (a larger window changes nothing).
fn half_window(kernel_size: f64, h: usize, w: usize) -> usize {
    let k = (3.0 * kernel_size).ceil();
    let cap = h.max(w) as f64;
    if k >= cap {
        h.max(w)
    } else {
        k as usize
    }
}

/// Follows every pixel's links to its root.
fn flatten(mut parent: Vec<usize>) -> Vec<usize> {
    for i in 0..parent.len() {
        let mut root = parent[i];
        while parent[root] != root {
            root = parent[root];
        }
        parent[i] = root;
    }
    parent
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn fast_exp_is_within_its_bound() {
        let mut xs: Vec<f64> = (0..2_000_000).map(|i| -(i as f64) * 3.54e-4).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        xs.extend((0..1_000_000).map(|_| -rng.random::<f64>() * 40.0));
        xs.extend([
            0.0,
            -0.0,
            -1e-300,
            -5e-324,
            -0.5 * std::f64::consts::LN_2,
            -707.9,
            -708.0,
        ]);
        let mut fast = xs.clone();
        exp_fast(&mut fast);
        let worst = xs
            .iter()
            .zip(&fast)
            .map(|(x, f)| ((f - x.exp()) / x.exp()).abs())
            .fold(0.0, f64::max);
        eprintln!("exp_fast: worst relative error {worst:e}");
        assert!(
            worst < EXP_FAST_REL_ERR / 4.0,
            "worst relative error {worst:e}"
        );
        let mut tiny = [-709.0, -745.0, -1e6, f64::NEG_INFINITY];
        exp_fast(&mut tiny);
        assert!(tiny.iter().all(|&v| (0.0..1e-307).contains(&v)));
    }

    /// scikit-image's parent search, verbatim: exact densities, raster scan, strict `<`.
    fn reference_roots(core: &Core<3>, noise: &[f64], max_dist: f64) -> Vec<usize> {
        let (h, w, k) = (core.h, core.w, core.k);
        let dens = core.densities_direct(noise);
        let parent = (0..h * w)
            .map(|i| {
                let (r, c) = (i / w, i % w);
                let mut closest = f64::MAX;
                let mut best = i;
                for r2 in window(r, k, h) {
                    for c2 in window(c, k, w) {
                        let j = r2 * w + c2;
                        if dens[j] > dens[i] {
                            let d = core.dist(
                                &core.px[i],
                                &core.px[j],
                                r as f64 - r2 as f64,
                                c as f64 - c2 as f64,
                            );
                            if d < closest {
                                closest = d;
                                best = j;
                            }
                        }
                    }
                }
                if closest.sqrt() > max_dist {
                    i
                } else {
                    best
                }
            })
            .collect();
        flatten(parent)
    }

    #[test]
    fn fast_parents_equal_the_raster_scan() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for (h, w, ks, levels, max_dist) in [
            (20, 31, 2.0, 3.0, 1e9),
            (25, 25, 1.0, 2.0, 1e9),
            (16, 9, 3.0, 4.0, 2.5),
            (12, 40, 1.5, 1000.0, 3.0),
        ] {
            // Quantised colours give many equal distances (ties) and equal densities.
            let data: Vec<f64> = (0..h * w * 3)
                .map(|_| (rng.random::<f64>() * levels).floor())
                .collect();
            for noise_scale in [1e-5, 0.0] {
                let noise: Vec<f64> = (0..h * w)
                    .map(|_| rng.random::<f64>() * noise_scale)
                    .collect();
                let core = Core::<3>::new(&data, h, w, ks);
                assert_eq!(
                    core.run(&noise, max_dist),
                    reference_roots(&core, &noise, max_dist),
                    "{h}×{w} kernel {ks} levels {levels} noise {noise_scale}"
                );
            }
        }
    }

    #[test]
    fn ring_densities_equal_the_direct_sum_bit_for_bit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (h, w, ks) in [
            (17, 23, 2.0),
            (9, 40, 4.0),
            (30, 5, 1.5),
            (3, 4, 4.0),
            (1, 1, 1.0),
        ] {
            let data: Vec<f64> = (0..h * w * 3).map(|_| rng.random::<f64>() * 20.0).collect();
            let noise: Vec<f64> = (0..h * w).map(|_| rng.random::<f64>() * 1e-5).collect();
            let core = Core::<3>::new(&data, h, w, ks);
            let a = core.densities(&noise, exp_libm);
            let b = core.densities_direct(&noise);
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{h}×{w}"
            );
            let f = core.densities(&noise, exp_fast);
            assert!(a
                .iter()
                .zip(&f)
                .all(|(x, y)| (x - y).abs() <= 1e-12 * x.abs()));
            for i in 0..h * w {
                assert_eq!(core.density_exact(i, noise[i]).to_bits(), b[i].to_bits());
            }
        }
    }
}
