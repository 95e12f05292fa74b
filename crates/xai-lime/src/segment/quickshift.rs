//! Quickshift: mode seeking in the joint colour–position space.
//!
//! Vedaldi, A. and Soatto, S., *Quick shift and kernel methods for mode seeking*, ECCV 2008;
//! with scikit-image's `skimage.segmentation.quickshift` semantics (0.19–0.26).

use std::collections::HashMap;

use ndarray::{Array2, ArrayView2, ArrayView3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xai_models::simd::vectorize;

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
/// The tie-breaking noise is N(0, 10⁻⁵) per pixel in raster order, drawn exactly as NumPy's
/// `default_rng(seed).normal(scale=1e-5, size=(H, W))` ([`super::numpy_rng`]), so with the
/// default seed 42 the labels are scikit-image's (≥ 0.21, which ignores LIME's seed and always
/// uses 42). Other noise can be given to [`Quickshift::segment_with_noise`].
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
        // NumPy's default_rng(seed).normal(scale=1e-5): scikit-image's own draw, so the
        // default seed 42 reproduces its labels even where densities tie.
        super::numpy_rng::default_rng_normal(self.seed, 1e-5, shape)
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
        let roots = Core::new(&data, h, w, channels, self.kernel_size).run(&noise, self.max_dist);
        Ok(rank_roots(&roots, (h, w)))
    }
}

impl Segmenter for Quickshift {
    fn name(&self) -> &'static str {
        "quickshift"
    }

    fn segment(&self, image: ArrayView3<'_, f64>) -> Result<Array2<i32>> {
        super::on_worker(|| {
            self.validate()?;
            check_image(&image, "quickshift")?;
            let (h, w, _) = image.dim();
            let noise = self.noise((h, w));
            self.segment_with_noise(image, noise.view())
        })
    }
}

/// The window of pixel `i` along an axis of length `n`: `max(i−k, 0)..min(i+k+1, n)`.
#[inline(always)]
fn window(i: usize, k: usize, n: usize) -> std::ops::Range<usize> {
    i.saturating_sub(k)..(i + k + 1).min(n)
}

/// Quickshift on scaled features, one plane per channel.
///
/// scikit-image's labels depend on the densities only through the comparisons
/// `dens[q] > dens[p]` of the parent search. The densities are therefore summed with a
/// vectorised `exp` ([`exp_fast`]), in scikit-image's order, each with a bound on its
/// distance from scikit-image's own value ([`Core::bounds`]); a comparison the bounds cannot
/// decide is redone on densities recomputed exactly as scikit-image computes them
/// ([`Core::density_exact`]: the same terms with the C library's `exp`, summed in the same
/// order). Distances are computed with scikit-image's arithmetic, so the parent search picks
/// the same pixel.
struct Core {
    planes: Vec<Vec<f64>>,
    h: usize,
    w: usize,
    k: usize,
    inv: f64,
}

impl Core {
    fn new(data: &[f64], h: usize, w: usize, ch: usize, kernel_size: f64) -> Self {
        let planes = (0..ch)
            .map(|c| data.iter().skip(c).step_by(ch).copied().collect())
            .collect();
        Self {
            planes,
            h,
            w,
            k: half_window(kernel_size, h, w),
            inv: -0.5 / (kernel_size * kernel_size),
        }
    }

    /// Squared distance of pixels `i` and `j` in scikit-image's order: channels, then rows
    /// (`dr`), then columns (`dc`).
    #[inline(always)]
    fn dist(&self, i: usize, j: usize, dr: f64, dc: f64) -> f64 {
        let mut d = 0.0;
        for plane in &self.planes {
            let t = plane[i] - plane[j];
            d += t * t;
        }
        d += dr * dr;
        d += dc * dc;
        d
    }

    /// The kernel arguments `D·(−0.5/kernel_size²)` of the pixels `(r, lo..hi)` against
    /// `(r2, lo+dc..hi+dc)`, into `out` (length `hi − lo`), with [`Core::dist`]'s arithmetic.
    #[inline(always)]
    fn arguments(&self, r: usize, r2: usize, dc: isize, lo: usize, out: &mut [f64]) {
        let w = self.w;
        let n = out.len();
        let q0 = (r2 * w + lo).wrapping_add_signed(dc);
        out.fill(0.0);
        for plane in &self.planes {
            let p = &plane[r * w + lo..][..n];
            let q = &plane[q0..][..n];
            for ((o, a), b) in out.iter_mut().zip(p).zip(q) {
                let t = a - b;
                *o += t * t;
            }
        }
        let dr = r as f64 - r2 as f64;
        let dr2 = dr * dr;
        let dcf = dc as f64;
        let dc2 = dcf * dcf;
        let inv = self.inv;
        for o in out.iter_mut() {
            *o = ((*o + dr2) + dc2) * inv;
        }
    }

    /// The kernel terms `exp_fast(D·(−0.5/kernel_size²))` of [`Core::arguments`]'s pairs, into
    /// `out`. Three channels (Lab) take one fused loop with the same arithmetic.
    #[inline(always)]
    fn terms<const FMA: bool>(&self, r: usize, r2: usize, dc: isize, lo: usize, out: &mut [f64]) {
        let [p0, p1, p2] = self.planes.as_slice() else {
            self.arguments(r, r2, dc, lo, out);
            exp_fast::<FMA>(out);
            return;
        };
        let (w, n) = (self.w, out.len());
        let i = r * w + lo;
        let j = (r2 * w + lo).wrapping_add_signed(dc);
        let dr = r as f64 - r2 as f64;
        let dr2 = dr * dr;
        let dcf = dc as f64;
        let dc2 = dcf * dcf;
        let inv = self.inv;
        let a = p0[i..i + n].iter().zip(&p1[i..i + n]).zip(&p2[i..i + n]);
        let b = p0[j..j + n].iter().zip(&p1[j..j + n]).zip(&p2[j..j + n]);
        for (o, (((a0, a1), a2), ((b0, b1), b2))) in out.iter_mut().zip(a.zip(b)) {
            let (t0, t1, t2) = (a0 - b0, a1 - b1, a2 - b2);
            // 0 + t0² = t0²: the sum Core::dist starts from 0.
            let d = (t0 * t0 + t1 * t1) + t2 * t2;
            *o = exp_fast_one::<FMA>(((d + dr2) + dc2) * inv);
        }
    }

    /// The densities with [`exp_fast`]: each pixel sums `noise` and its window's kernel terms
    /// in raster order, as scikit-image does. A row adds one window offset at a time across
    /// all its columns (offsets in raster order), so each pixel's order is unchanged; rows
    /// run in parallel. The tests' reference for [`Core::densities_sym`].
    #[cfg(test)]
    fn densities(&self, noise: &[f64]) -> Vec<f64> {
        let (h, w, k) = (self.h, self.w, self.k);
        let ki = k as isize;
        let mut dens = noise.to_vec();
        dens.par_chunks_mut(w).enumerate().for_each_init(
            || vec![0.0; w],
            |buf, (r, acc)| {
                vectorize(
                    #[inline(always)]
                    || {
                        for r2 in window(r, k, h) {
                            for dc in -ki..=ki {
                                let (lo, hi) = col_range(dc, w);
                                if lo >= hi {
                                    continue;
                                }
                                let out = &mut buf[..hi - lo];
                                self.arguments(r, r2, dc, lo, out);
                                exp_fast::<false>(out);
                                for (a, e) in acc[lo..hi].iter_mut().zip(out.iter()) {
                                    *a += e;
                                }
                            }
                        }
                    },
                )
            },
        );
        dens
    }

    /// [`Core::densities`] with half the kernel terms: the term of a pair is symmetric (the
    /// same squares of the same differences), so each pair's term is computed once, by the
    /// pixel that comes first in raster order, and added to both pixels' densities at once.
    /// That sums each window in another order than scikit-image's raster scan, which the
    /// bounds allow ([`Core::bounds`] holds for any order), and needs no store of terms: a
    /// row of terms is computed into a buffer that stays in L1 and added to the two rows of
    /// densities, which for one band stay in L2. Horizontal bands of rows run in parallel,
    /// each into its own rows plus the k rows below it, which are added up at the end.
    fn densities_sym(&self, noise: &[f64]) -> Vec<f64> {
        let (h, w, k) = (self.h, self.w, self.k);
        let bands = (4 * rayon::current_num_threads()).clamp(1, h.div_ceil(8).max(1));
        let band_h = h.div_ceil(bands);
        let parts: Vec<(usize, Vec<f64>)> = (0..bands)
            .into_par_iter()
            .map(|b| {
                let r0 = (b * band_h).min(h);
                let r1 = (r0 + band_h).min(h);
                let end = (r1 + k).min(h);
                let mut acc = vec![0.0f64; (end - r0) * w];
                let mut buf = vec![0.0f64; w];
                // exp_fast with fused multiply-adds where the CPU has them: other roundings,
                // as accurate (the bounds hold for any exp within EXP_FAST_REL_ERR).
                if has_fma() {
                    vectorize(
                        #[inline(always)]
                        || self.band_terms::<true>(r0, r1, &mut acc, &mut buf),
                    )
                } else {
                    vectorize(
                        #[inline(always)]
                        || self.band_terms::<false>(r0, r1, &mut acc, &mut buf),
                    )
                }
                (r0, acc)
            })
            .collect();
        let mut dens = noise.to_vec();
        for (r0, acc) in parts {
            for (d, a) in dens[r0 * w..].iter_mut().zip(&acc) {
                *d += a;
            }
        }
        dens
    }

    /// The kernel terms of every pair whose first pixel lies in rows `r0..r1`, added to both
    /// pixels' densities in `acc` (rows `r0..`); `buf` holds one row of terms.
    #[inline(always)]
    fn band_terms<const FMA: bool>(&self, r0: usize, r1: usize, acc: &mut [f64], buf: &mut [f64]) {
        let (h, w, k) = (self.h, self.w, self.k);
        let ki = k as isize;
        for r in r0..r1 {
            // exp(−0) = 1 exactly, for the C library and exp_fast.
            for a in &mut acc[(r - r0) * w..(r - r0 + 1) * w] {
                *a += 1.0;
            }
            for dr in 0..=k {
                let r2 = r + dr;
                if r2 >= h {
                    break;
                }
                let dcs = if dr == 0 { 1..=ki } else { -ki..=ki };
                for dc in dcs {
                    let (lo, hi) = col_range(dc, w);
                    if lo >= hi {
                        continue;
                    }
                    let t = &mut buf[..hi - lo];
                    self.terms::<FMA>(r, r2, dc, lo, t);
                    let p = (r - r0) * w + lo;
                    for (a, v) in acc[p..p + t.len()].iter_mut().zip(t.iter()) {
                        *a += v;
                    }
                    let q = ((r2 - r0) * w + lo).wrapping_add_signed(dc);
                    for (a, v) in acc[q..q + t.len()].iter_mut().zip(t.iter()) {
                        *a += v;
                    }
                }
            }
        }
    }

    /// For each density from [`Core::densities_sym`], a bound on its distance from
    /// scikit-image's.
    ///
    /// Both sum `noise` and the same n terms; scikit-image's terms `t` and ours `t'` differ by
    /// at most `EXP_FAST_REL_ERR·t` (plus `EXP_FAST_ABS_ERR` where the result is below the
    /// normal range). Summing n + 1 values in any order (any tree of additions) is within
    /// `γ(n+1)·Σ|x|` of the exact sum (Higham, *Accuracy and Stability of Numerical
    /// Algorithms*, §4.2), each sum on its own, so the two densities differ by at most
    /// `(2γ(n+1) + EXP_FAST_REL_ERR)·(|noise| + Σt) + n·EXP_FAST_ABS_ERR`, and
    /// `|noise| + Σt ≤ (|ours| + 2|noise|)·(1 + 1e-3)` with room to spare.
    fn bounds(&self, dens: &[f64], noise: &[f64]) -> Vec<f64> {
        let (h, w, k) = (self.h, self.w, self.k);
        let u = f64::EPSILON / 2.0;
        let mut out = Vec::with_capacity(h * w);
        for r in 0..h {
            let rows = window(r, k, h).len();
            for c in 0..w {
                let n = (rows * window(c, k, w).len()) as f64;
                let nu = (n + 1.0) * u;
                let gamma = nu / (1.0 - nu);
                let i = r * w + c;
                let mass = (dens[i].abs() + 2.0 * noise[i].abs()) * (1.0 + 1e-3);
                out.push(
                    (2.0 * gamma + EXP_FAST_REL_ERR) * mass * (1.0 + 1e-3) + n * EXP_FAST_ABS_ERR,
                );
            }
        }
        out
    }

    /// One pixel's density exactly as scikit-image computes it: its window in raster order,
    /// the C library's `exp`.
    fn density_exact(&self, i: usize, noise: f64) -> f64 {
        let (h, w, k) = (self.h, self.w, self.k);
        let (r, c) = (i / w, i % w);
        let mut acc = noise;
        for r2 in window(r, k, h) {
            let dr = r as f64 - r2 as f64;
            for c2 in window(c, k, w) {
                let dc = c as f64 - c2 as f64;
                acc += (self.dist(i, r2 * w + c2, dr, dc) * self.inv).exp();
            }
        }
        acc
    }

    /// Pixel `i`'s parent from the fast densities: the window pixel of strictly higher
    /// density at the smallest distance, the first in raster order among equals, as
    /// scikit-image's raster scan with a strict `<` finds it. `None` when a comparison that
    /// could change the answer is closer than the bounds.
    ///
    /// Rows are visited by increasing |Δrow| and, once a candidate is known, only the columns
    /// with Δrow² + Δcol² ≤ the closest distance so far: every distance is at least its
    /// spatial part (the additions are rounded monotonically and the squares of small integers
    /// are exact), so the skipped pixels are strictly farther and cannot win, not even a tie.
    #[inline(always)]
    fn parent_fast(&self, i: usize, dens: &[f64], bound: &[f64]) -> Option<(usize, f64)> {
        let (h, w, k) = (self.h, self.w, self.k);
        let (r, c) = (i / w, i % w);
        let (cur, bi) = (dens[i], bound[i]);
        let mut closest = f64::MAX;
        let mut best = i;
        // The smallest distance of a pixel whose comparison was undecided.
        let mut unsure = f64::INFINITY;
        let rows = window(r, k, h);
        let cols = window(c, k, w);
        for step in 0..=2 * k {
            let off = (step as isize + 1) / 2 * if step % 2 == 1 { -1 } else { 1 };
            let Some(r2) = r.checked_add_signed(off) else {
                continue;
            };
            if !rows.contains(&r2) {
                continue;
            }
            let dr = r as f64 - r2 as f64;
            let dr2 = dr * dr;
            if dr2 > closest {
                break;
            }
            let (c0, c1) = if closest < f64::MAX {
                // |Δcol| ≤ √(closest − Δrow²), rounded up generously.
                let lim = ((closest - dr2).sqrt() + 1.0) as usize;
                (
                    cols.start.max(c.saturating_sub(lim)),
                    cols.end.min(c + lim + 1),
                )
            } else {
                (cols.start, cols.end)
            };
            // Eight columns at a time: every lane's distance with dist's arithmetic, then
            // the nearest higher one, the first in raster order among equals.
            let mut c2 = c0;
            while c2 + LANES <= c1 {
                let j0 = r2 * w + c2;
                let mut d = [0.0f64; LANES];
                for plane in &self.planes {
                    let pi = plane[i];
                    for (o, v) in d.iter_mut().zip(&plane[j0..j0 + LANES]) {
                        let t = pi - v;
                        *o += t * t;
                    }
                }
                let dc0 = c as f64 - c2 as f64;
                let mut near = [f64::INFINITY; LANES];
                let mut open = [f64::INFINITY; LANES];
                for (l, ((dist, &dj), &bj)) in d
                    .iter()
                    .zip(&dens[j0..j0 + LANES])
                    .zip(&bound[j0..j0 + LANES])
                    .enumerate()
                {
                    let dc = dc0 - l as f64;
                    let dist = (dist + dr2) + dc * dc;
                    let diff = dj - cur;
                    let margin = 1.000_001 * (bi + bj);
                    let higher = diff > margin;
                    let undecided = !higher && diff >= -margin && j0 + l != i;
                    near[l] = if higher { dist } else { f64::INFINITY };
                    open[l] = if undecided { dist } else { f64::INFINITY };
                }
                let (mut lane_min, mut open_min) = (f64::INFINITY, f64::INFINITY);
                for (&a, &b) in near.iter().zip(&open) {
                    lane_min = if a < lane_min { a } else { lane_min };
                    open_min = if b < open_min { b } else { open_min };
                }
                unsure = if open_min < unsure { open_min } else { unsure };
                if lane_min <= closest {
                    let l = near.iter().position(|&v| v == lane_min).unwrap_or(0);
                    if lane_min < closest || j0 + l < best {
                        closest = lane_min;
                        best = j0 + l;
                    }
                }
                c2 += LANES;
            }
            for c2 in c2..c1 {
                let j = r2 * w + c2;
                let diff = dens[j] - cur;
                let margin = 1.000_001 * (bi + bound[j]);
                let higher = diff > margin;
                if !higher && diff >= -margin && j != i {
                    let d = self.dist(i, j, dr, c as f64 - c2 as f64);
                    unsure = unsure.min(d);
                } else if higher {
                    let d = self.dist(i, j, dr, c as f64 - c2 as f64);
                    if d < closest || (d == closest && j < best) {
                        closest = d;
                        best = j;
                    }
                }
            }
        }
        (unsure > closest).then_some((best, closest))
    }

    /// Pixel `i`'s parent by scikit-image's full raster scan, where each comparison the
    /// bounds cannot decide uses exact densities (`exact` caches them).
    #[cold]
    fn parent_exact(
        &self,
        i: usize,
        dens: &[f64],
        bound: &[f64],
        noise: &[f64],
        exact: &mut HashMap<usize, f64>,
    ) -> (usize, f64) {
        let (h, w, k) = (self.h, self.w, self.k);
        let (r, c) = (i / w, i % w);
        let cur = dens[i];
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
                    let di = *exact
                        .entry(i)
                        .or_insert_with(|| self.density_exact(i, noise[i]));
                    let dj = *exact
                        .entry(j)
                        .or_insert_with(|| self.density_exact(j, noise[j]));
                    dj > di
                };
                if higher {
                    let d = self.dist(i, j, dr, c as f64 - c2 as f64);
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
    fn run(&self, noise: &[f64], max_dist: f64) -> Vec<usize> {
        let (h, w) = (self.h, self.w);
        let dens = self.densities_sym(noise);
        let bound = self.bounds(&dens, noise);
        // (parent, closest distance), or None where the bounds could not decide.
        let mut found: Vec<Option<(usize, f64)>> = vec![None; h * w];
        found.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
            vectorize(
                #[inline(always)]
                || {
                    for (c, f) in row.iter_mut().enumerate() {
                        *f = self.parent_fast(r * w + c, &dens, &bound);
                    }
                },
            )
        });
        let mut exact = HashMap::new();
        let parent: Vec<usize> = found
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let (best, closest) = match f {
                    Some(f) => f,
                    None => self.parent_exact(i, &dens, &bound, noise, &mut exact),
                };
                if closest.sqrt() > max_dist {
                    i
                } else {
                    best
                }
            })
            .collect();
        flatten(parent)
    }

    /// scikit-image's computation verbatim (the C library's `exp`, full raster scans): the
    /// reference the tests hold [`Core::run`] to.
    #[cfg(test)]
    fn run_direct(&self, noise: &[f64], max_dist: f64) -> Vec<usize> {
        let (h, w, k) = (self.h, self.w, self.k);
        let dens: Vec<f64> = (0..h * w)
            .map(|i| self.density_exact(i, noise[i]))
            .collect();
        let mut parent: Vec<usize> = (0..h * w).collect();
        for (i, par) in parent.iter_mut().enumerate() {
            let (r, c) = (i / w, i % w);
            let mut closest = f64::MAX;
            for r2 in window(r, k, h) {
                for c2 in window(c, k, w) {
                    let j = r2 * w + c2;
                    if dens[j] > dens[i] {
                        let d = self.dist(i, j, r as f64 - r2 as f64, c as f64 - c2 as f64);
                        if d < closest {
                            closest = d;
                            *par = j;
                        }
                    }
                }
            }
            if closest.sqrt() > max_dist {
                *par = i;
            }
        }
        flatten(parent)
    }
}

/// Columns per step of [`Core::parent_fast`]'s vectorised scan.
const LANES: usize = 8;

/// An upper bound on the relative error of [`exp_fast`] against the C library's `exp` for
/// arguments in [−708, 0] (measured: under 5e-16; see the tests).
const EXP_FAST_REL_ERR: f64 = 2e-15;

/// An upper bound on the absolute error of [`exp_fast`] for arguments below −708, where it
/// returns `exp(−708)` ≈ 3.3e-308 and the C library something smaller.
const EXP_FAST_ABS_ERR: f64 = 4e-308;

/// A branch-free `exp` for arguments ≤ 0 that the compiler vectorises, in place:
/// `2^k · p(r)` with `r = x − k·ln 2` (Cody–Waite, `|r| ≤ ln 2 / 2`) and the degree-13
/// Taylor polynomial of `exp(r)` evaluated by Estrin's scheme (short dependency chains).
/// Arguments below −708 are clamped, which keeps `2^k` normal.
#[inline(always)]
///
/// With `FMA` the products and sums are fused (`mul_add`): other roundings, within the same
/// bound. Only for code that runs where the CPU has FMA (see [`has_fma`]); elsewhere each
/// `mul_add` is a library call.
fn exp_fast<const FMA: bool>(xs: &mut [f64]) {
    let mut chunks = xs.chunks_exact_mut(8);
    for ch in &mut chunks {
        for v in ch.iter_mut() {
            *v = exp_fast_one::<FMA>(*v);
        }
    }
    for v in chunks.into_remainder() {
        *v = exp_fast_one::<FMA>(*v);
    }
}

/// Whether this CPU has FMA, and the AVX2 with which [`vectorize`] compiles it in.
fn has_fma() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    {
        false
    }
}

/// `a·b + c`, fused or not.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn exp_fast_one<const FMA: bool>(v: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // 1.5·2⁵²: adding it rounds to an integer, left in the low bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    // ln 2 in two parts: LN2_HI has 32 significant bits, so k·LN2_HI is exact.
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
    let x = if v < -708.0 { -708.0 } else { v };
    let kd = madd::<FMA>(x, LOG2E, SHIFT);
    let kf = kd - SHIFT;
    // kf·LN2_HI is exact, so fusing the first step changes nothing.
    let r = madd::<FMA>(-kf, LN2_LO, madd::<FMA>(-kf, LN2_HI, x));
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let p01 = madd::<FMA>(C[1], r, C[0]);
    let p23 = madd::<FMA>(C[3], r, C[2]);
    let p45 = madd::<FMA>(C[5], r, C[4]);
    let p67 = madd::<FMA>(C[7], r, C[6]);
    let p89 = madd::<FMA>(C[9], r, C[8]);
    let p1011 = madd::<FMA>(C[11], r, C[10]);
    let p1213 = madd::<FMA>(C[13], r, C[12]);
    let p03 = madd::<FMA>(p23, r2, p01);
    let p47 = madd::<FMA>(p67, r2, p45);
    let p811 = madd::<FMA>(p1011, r2, p89);
    let p07 = madd::<FMA>(p47, r4, p03);
    let p813 = madd::<FMA>(p1213, r4, p811);
    let p = madd::<FMA>(p813, r8, p07);
    // The low bits of kd hold k (two's complement); shifted into the exponent field.
    f64::from_bits(p.to_bits().wrapping_add(kd.to_bits() << 52))
}

/// The columns c with c + offset inside `0..w`, as a range `lo..hi`.
#[inline(always)]
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
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn fast_exp_is_within_its_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut xs: Vec<f64> = (0..1_000_000).map(|i| -(i as f64) * 7.08e-4).collect();
        xs.extend((0..1_000_000).map(|_| -rng.random::<f64>() * 40.0));
        xs.extend((0..200_000).map(|_| -rng.random::<f64>() * 2.0));
        xs.extend([
            0.0,
            -0.0,
            -1e-300,
            -5e-324,
            -0.5 * std::f64::consts::LN_2,
            -707.9,
        ]);
        xs.extend([-708.0, -708.5, -745.0, -800.0, -1e300, f64::NEG_INFINITY]);
        for fma in [false, true] {
            let mut fast = xs.clone();
            if fma {
                exp_fast::<true>(&mut fast);
            } else {
                exp_fast::<false>(&mut fast);
            }
            check_exp(&xs, &fast);
        }
    }

    fn check_exp(xs: &[f64], fast: &[f64]) {
        let mut worst = 0.0f64;
        for (x, f) in xs.iter().zip(fast) {
            let e = x.exp();
            if *x >= -708.0 {
                worst = worst.max(((f - e) / e).abs());
            } else {
                assert!((f - e).abs() <= EXP_FAST_ABS_ERR, "exp({x}): {f} vs {e}");
            }
        }
        assert!(
            worst < EXP_FAST_REL_ERR / 3.0,
            "worst relative error {worst:e}"
        );
        assert_eq!(fast[xs.len() - 12], 1.0);
    }

    fn features(h: usize, w: usize, ch: usize, levels: u32, seed: u64) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        if levels == 0 {
            return (0..h * w * ch)
                .map(|_| rng.random::<f64>() * 20.0)
                .collect();
        }
        // Flat-coloured blocks: a few colours, so many distances and densities tie.
        let colours: Vec<f64> = (0..levels as usize * ch)
            .map(|_| f64::from(rng.random_range(0..4u32)) * 2.5)
            .collect();
        let mut out = Vec::with_capacity(h * w * ch);
        for y in 0..h {
            for x in 0..w {
                let b = ((y / 5) * 7 + (x / 6) * 3) % levels as usize;
                out.extend_from_slice(&colours[b * ch..(b + 1) * ch]);
            }
        }
        out
    }

    #[test]
    fn the_fast_path_gives_scikit_images_trees() {
        let cases = [
            (31, 27, 3, 0, 4.0, 200.0),
            (31, 27, 3, 3, 4.0, 200.0),
            (24, 40, 3, 5, 2.5, 6.0),
            (20, 22, 1, 2, 2.0, 3.0),
            (17, 19, 4, 3, 1.0, 200.0),
            (1, 30, 3, 2, 4.0, 200.0),
            (9, 1, 3, 0, 3.0, 200.0),
        ];
        for (seed, &(h, w, ch, levels, ks, md)) in cases.iter().enumerate() {
            let data = features(h, w, ch, levels, seed as u64);
            let core = Core::new(&data, h, w, ch, ks);
            let mut rng = rand::rngs::StdRng::seed_from_u64(100 + seed as u64);
            let noise: Vec<f64> = (0..h * w).map(|_| rng.random::<f64>() * 1e-5).collect();
            assert_eq!(
                core.run(&noise, md),
                core.run_direct(&noise, md),
                "case {seed}"
            );
            // Without noise the flat blocks tie exactly: every such comparison falls back.
            let zero = vec![0.0; h * w];
            assert_eq!(
                core.run(&zero, md),
                core.run_direct(&zero, md),
                "case {seed}, no noise"
            );
        }
    }

    #[test]
    fn half_the_terms_stay_within_the_bounds() {
        // Shapes with fewer rows than bands, a window wider than the image, one channel.
        for (h, w, ch, ks, seed) in [
            (29, 33, 3, 4.0, 1),
            (7, 40, 3, 2.0, 2),
            (30, 5, 1, 1.5, 3),
            (3, 9, 3, 4.0, 4),
            (61, 17, 3, 1.0, 5),
        ] {
            let data = features(h, w, ch, 0, seed);
            let core = Core::new(&data, h, w, ch, ks);
            let noise: Vec<f64> = (0..h * w).map(|i| (i as f64).cos() * 1e-5).collect();
            let raster = core.densities(&noise);
            let sym = core.densities_sym(&noise);
            let bound = core.bounds(&sym, &noise);
            for i in 0..h * w {
                let exact = core.density_exact(i, noise[i]);
                assert!((sym[i] - exact).abs() <= bound[i], "pixel {i}");
                assert!((sym[i] - raster[i]).abs() <= 2.0 * bound[i], "pixel {i}");
            }
        }
    }

    #[test]
    fn fast_densities_are_within_their_bounds() {
        let (h, w) = (30, 26);
        let data = features(h, w, 3, 0, 5);
        let core = Core::new(&data, h, w, 3, 4.0);
        let noise: Vec<f64> = (0..h * w).map(|i| (i as f64).sin() * 1e-5).collect();
        let dens = core.densities(&noise);
        let bound = core.bounds(&dens, &noise);
        for i in 0..h * w {
            let exact = core.density_exact(i, noise[i]);
            assert!((dens[i] - exact).abs() <= bound[i], "pixel {i}");
            assert!(
                bound[i] < 1e-9 * exact.abs().max(1.0),
                "pixel {i}: bound {}",
                bound[i]
            );
        }
    }
}
