//! Quickshift: mode seeking in the joint colour–position space.
//!
//! Vedaldi, A. and Soatto, S., *Quick shift and kernel methods for mode seeking*, ECCV 2008;
//! with scikit-image's `skimage.segmentation.quickshift` semantics (0.19–0.26).

use ndarray::{Array2, ArrayView2, ArrayView3};
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
        Self {
            px,
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

    fn run(&self, noise: &[f64], max_dist: f64) -> Vec<usize> {
        let (h, w, k) = (self.h, self.w, self.k);
        // Densities, one row per task: each pixel sums its window in raster order.
        let mut dens = noise.to_vec();
        dens.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
            for (c, d) in row.iter_mut().enumerate() {
                let p = &self.px[r * w + c];
                let mut acc = *d;
                for r2 in window(r, k, h) {
                    let dr = r as f64 - r2 as f64;
                    let qrow = &self.px[r2 * w..(r2 + 1) * w];
                    for c2 in window(c, k, w) {
                        let dc = c as f64 - c2 as f64;
                        acc += (self.dist(p, &qrow[c2], dr, dc) * self.inv).exp();
                    }
                }
                *d = acc;
            }
        });
        // Parents: the closest window pixel of strictly higher density (first wins ties).
        let mut parent: Vec<usize> = (0..h * w).collect();
        parent.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
            for (c, par) in row.iter_mut().enumerate() {
                let i = r * w + c;
                let p = &self.px[i];
                let cur = dens[i];
                let mut closest = f64::MAX;
                let mut best = i;
                for r2 in window(r, k, h) {
                    let dr = r as f64 - r2 as f64;
                    for c2 in window(c, k, w) {
                        let j = r2 * w + c2;
                        if dens[j] > cur {
                            let dc = c as f64 - c2 as f64;
                            let d = self.dist(p, &self.px[j], dr, dc);
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
