//! Gaussian smoothing with `scipy.ndimage.gaussian_filter`'s semantics, which scikit-image's
//! segmenters use before segmenting.
//!
//! - Separable: one 1-D pass per axis, in axis order; an axis with σ ≤ 1e-15 is skipped.
//! - Radius ⌊4σ + 0.5⌋; weights `exp(−0.5/σ² · j²)` for j = −r..r, divided by their sum
//!   (summed as NumPy's pairwise sum does).
//! - Border mode `reflect`: half-sample symmetric (`… b a | a b c … | c b …`), repeated as
//!   often as the radius needs.
//! - Each output is `x₀·w₀ + Σ_{j=r..1} (x₋ⱼ + xⱼ)·wⱼ` in that order, as SciPy's symmetric
//!   kernel path computes it, so results are bit-identical to SciPy's.
//!
//! ```
//! use ndarray::Array3;
//! use xai_lime::segment::gaussian::gaussian_filter;
//!
//! let mut image = Array3::<f64>::zeros((9, 9, 1));
//! image[[4, 4, 0]] = 1.0;
//! let smooth = gaussian_filter(image.view(), [1.0, 1.0])?;
//! assert!((smooth.sum() - 1.0).abs() < 1e-12);   // mass is kept
//! assert!(smooth[[4, 4, 0]] < 0.2 && smooth[[4, 5, 0]] > 0.0);
//! # Ok::<(), xai_lime::Error>(())
//! ```

use ndarray::{Array3, ArrayView3, Axis};
use rayon::prelude::*;
use xai_models::simd::vectorize;

use crate::{Error, Result};

/// Smooths the two spatial axes of an `(height, width, channels)` image with standard
/// deviations `sigma = [σ_rows, σ_columns]`; channels are filtered independently.
///
/// Errors with [`Error::Parameter`] for a negative or non-finite σ.
pub fn gaussian_filter(image: ArrayView3<'_, f64>, sigma: [f64; 2]) -> Result<Array3<f64>> {
    for s in sigma {
        if !s.is_finite() || s < 0.0 {
            return Err(Error::param(
                "sigma",
                format!("must be a finite number >= 0, got {s}"),
            ));
        }
    }
    let mut out = image.as_standard_layout().into_owned();
    filter_axis(&mut out, Axis(0), sigma[0]);
    filter_axis(&mut out, Axis(1), sigma[1]);
    Ok(out)
}

/// SciPy's normalised 1-D Gaussian weights `w₀..w_r` (the kernel is symmetric), or `None`
/// where SciPy skips the axis (σ ≤ 1e-15).
pub(crate) fn kernel(sigma: f64) -> Option<Vec<f64>> {
    if sigma.is_nan() || sigma <= 1e-15 {
        return None;
    }
    let radius = (4.0 * sigma + 0.5) as usize;
    let s2 = sigma * sigma;
    let coef = -0.5 / s2;
    let full: Vec<f64> = (-(radius as i64)..=radius as i64)
        .map(|j| (coef * ((j * j) as f64)).exp())
        .collect();
    let sum = pairwise_sum(&full);
    Some(full[radius..].iter().map(|v| v / sum).collect())
}

/// NumPy's pairwise summation of a contiguous `f64` array (`np.sum`).
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for v in a {
            res += v;
        }
        res
    } else if n <= BLOCK {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (k, rk) in r.iter_mut().enumerate() {
                *rk += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[full..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// Index `i` (may lie outside `0..n`) under half-sample symmetric reflection.
#[inline(always)]
pub(crate) fn reflect(i: isize, n: usize) -> usize {
    let n2 = 2 * n as isize;
    let m = i.rem_euclid(n2);
    if m >= n as isize {
        (n2 - 1 - m) as usize
    } else {
        m as usize
    }
}

/// Filters one line in place of `out`: `line` is the input, `ext` a scratch buffer.
fn filter_line(line: &[f64], weights: &[f64], ext: &mut Vec<f64>, out: &mut [f64]) {
    let n = line.len();
    let r = weights.len() - 1;
    ext.clear();
    ext.extend((-(r as isize)..(n + r) as isize).map(|i| line[reflect(i, n)]));
    for (k, o) in out.iter_mut().enumerate() {
        let c = k + r;
        let mut acc = ext[c] * weights[0];
        for j in (1..=r).rev() {
            acc += (ext[c - j] + ext[c + j]) * weights[j];
        }
        *o = acc;
    }
}

/// Applies SciPy's 1-D Gaussian along `axis` of `data`, in place.
pub(crate) fn filter_axis(data: &mut Array3<f64>, axis: Axis, sigma: f64) {
    let Some(weights) = kernel(sigma) else {
        return;
    };
    let n = data.len_of(axis);
    if n == 0 {
        return;
    }
    let (h, w, c) = data.dim();
    if let (Some(slice), 0 | 1) = (data.as_slice_mut(), axis.index()) {
        // Standard layout: whole rows at once, each value with filter_line's arithmetic.
        let row = w * c;
        if axis.index() == 0 {
            filter_rows(slice, h, row, &weights);
        } else {
            slice
                .par_chunks_mut(row.max(1))
                .for_each_init(Vec::new, |ext, line| {
                    vectorize(
                        #[inline(always)]
                        || filter_interleaved(line, c, &weights, ext),
                    )
                });
        }
        return;
    }
    // Gather the lines along `axis`, filter them in parallel, scatter them back.
    let lanes: Vec<Vec<f64>> = data.lanes(axis).into_iter().map(|l| l.to_vec()).collect();
    let filtered: Vec<Vec<f64>> = lanes
        .par_iter()
        .map_init(Vec::new, |ext, line| {
            let mut out = vec![0.0; n];
            filter_line(line, &weights, ext, &mut out);
            out
        })
        .collect();
    for (mut lane, f) in data.lanes_mut(axis).into_iter().zip(filtered) {
        for (o, v) in lane.iter_mut().zip(f) {
            *o = v;
        }
    }
}

/// Filters along the first axis of `data`, `h` rows of `row` values: output row y is
/// `x_y·w₀ + Σ_{j=r..1} (x_{y−j} + x_{y+j})·wⱼ` with reflected row indices, elementwise.
fn filter_rows(data: &mut [f64], h: usize, row: usize, weights: &[f64]) {
    let r = weights.len() - 1;
    let input = data.to_vec();
    data.par_chunks_mut(row.max(1))
        .enumerate()
        .for_each(|(y, out)| {
            vectorize(
                #[inline(always)]
                || {
                    let centre = &input[y * row..(y + 1) * row];
                    for (o, x) in out.iter_mut().zip(centre) {
                        *o = x * weights[0];
                    }
                    for j in (1..=r).rev() {
                        let a = reflect(y as isize - j as isize, h);
                        let b = reflect((y + j) as isize, h);
                        let (xa, xb) = (
                            &input[a * row..(a + 1) * row],
                            &input[b * row..(b + 1) * row],
                        );
                        let wj = weights[j];
                        for ((o, p), q) in out.iter_mut().zip(xa).zip(xb) {
                            *o += (p + q) * wj;
                        }
                    }
                },
            )
        });
}

/// Filters one row of `c` interleaved channels along its length, in place, with
/// filter_line's arithmetic; `ext` is scratch space for the reflected row.
#[inline(always)]
fn filter_interleaved(line: &mut [f64], c: usize, weights: &[f64], ext: &mut Vec<f64>) {
    let n = line.len() / c.max(1);
    let r = weights.len() - 1;
    ext.clear();
    for i in -(r as isize)..(n + r) as isize {
        let p = reflect(i, n);
        ext.extend_from_slice(&line[p * c..(p + 1) * c]);
    }
    let len = n * c;
    let centre = &ext[r * c..r * c + len];
    for (o, x) in line.iter_mut().zip(centre) {
        *o = x * weights[0];
    }
    for j in (1..=r).rev() {
        let lo = &ext[(r - j) * c..(r - j) * c + len];
        let hi = &ext[(r + j) * c..(r + j) * c + len];
        let wj = weights[j];
        for ((o, p), q) in line.iter_mut().zip(lo).zip(hi) {
            *o += (p + q) * wj;
        }
    }
}

/// Applies SciPy's 1-D Gaussian along an axis of length 1 (the `z` axis scikit-image's SLIC
/// adds to 2-D images): every value becomes `x·w₀ + Σ (x + x)·wⱼ`, which is not always `x`.
pub(crate) fn filter_singleton_axis(data: &mut Array3<f64>, sigma: f64) {
    let Some(weights) = kernel(sigma) else {
        return;
    };
    let mut ext = Vec::new();
    let mut out = [0.0];
    for v in data.iter_mut() {
        filter_line(&[*v], &weights, &mut ext, &mut out);
        *v = out[0];
    }
}

/// Smooths each `h × w` raster of `planes` along its rows (axis 0), then its columns (axis 1),
/// with σ for both: [`filter_axis`] on both axes of the interleaved image, value for value,
/// on planar data (each line is contiguous or a stride-1 row of lines, so every tap is one
/// vectorised pass).
pub(crate) fn filter_planes(planes: &mut [Vec<f64>], (h, w): (usize, usize), sigma: f64) {
    let Some(weights) = kernel(sigma) else {
        return;
    };
    if h == 0 || w == 0 {
        return;
    }
    let r = weights.len() - 1;
    // Enough rows per task to amortise the scheduling, few enough to share the work.
    let rows_per_task = (16384 / w).clamp(1, h);
    for plane in planes.iter_mut() {
        let input = plane.clone();
        plane
            .par_chunks_mut(rows_per_task * w)
            .enumerate()
            .for_each_init(Vec::new, |ext: &mut Vec<f64>, (t, out_rows)| {
                vectorize(
                    #[inline(always)]
                    || {
                        for (i, out) in out_rows.chunks_exact_mut(w).enumerate() {
                            let y = t * rows_per_task + i;
                            // Down the columns: row y from rows y ± j.
                            let centre = &input[y * w..(y + 1) * w];
                            for (o, x) in out.iter_mut().zip(centre) {
                                *o = x * weights[0];
                            }
                            for j in (1..=r).rev() {
                                let a = reflect(y as isize - j as isize, h);
                                let b = reflect((y + j) as isize, h);
                                let (xa, xb) =
                                    (&input[a * w..(a + 1) * w], &input[b * w..(b + 1) * w]);
                                let wj = weights[j];
                                for ((o, p), q) in out.iter_mut().zip(xa).zip(xb) {
                                    *o += (p + q) * wj;
                                }
                            }
                            // Along the row, from its reflected extension.
                            ext.clear();
                            ext.extend((-(r as isize)..0).map(|i| out[reflect(i, w)]));
                            ext.extend_from_slice(out);
                            ext.extend((w as isize..(w + r) as isize).map(|i| out[reflect(i, w)]));
                            for (o, x) in out.iter_mut().zip(&ext[r..r + w]) {
                                *o = x * weights[0];
                            }
                            for j in (1..=r).rev() {
                                let lo = &ext[r - j..r - j + w];
                                let hi = &ext[r + j..r + j + w];
                                let wj = weights[j];
                                for ((o, p), q) in out.iter_mut().zip(lo).zip(hi) {
                                    *o += (p + q) * wj;
                                }
                            }
                        }
                    },
                )
            });
    }
}
