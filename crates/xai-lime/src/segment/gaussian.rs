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

/// The channels of an `(h, w, c)` image as `c` planar `h × w` rasters, each smoothed along its
/// rows (axis 0), then its columns (axis 1), with σ for both: [`filter_axis`] on both axes of
/// the interleaved image, value for value. Each task deinterleaves just the rows its output
/// rows need, so every tap is one vectorised pass over contiguous values and the image is
/// read once. Planes are written into `planes` (resized; their memory is reused).
pub(crate) fn smooth_planes(image: ArrayView3<'_, f64>, sigma: f64, planes: &mut Vec<Vec<f64>>) {
    let (h, w, c) = image.dim();
    let standard = image.as_standard_layout();
    let src = standard.as_slice().unwrap_or(&[]);
    planes.resize_with(c, Vec::new);
    for plane in planes.iter_mut() {
        // Every value is written below.
        super::resize_for_overwrite(plane, h * w);
    }
    if h == 0 || w == 0 || c == 0 || src.len() != h * w * c {
        return;
    }
    let weights = kernel(sigma);
    let r = weights.as_ref().map_or(0, |k| k.len() - 1);
    // Enough rows per task to amortise the scheduling, few enough to share the work.
    let rows_per_task = (8192 / w).clamp(1, h);
    let mut outputs: Vec<Vec<&mut [f64]>> =
        (0..h.div_ceil(rows_per_task)).map(|_| Vec::new()).collect();
    for plane in planes.iter_mut() {
        for (task, rows) in outputs.iter_mut().zip(plane.chunks_mut(rows_per_task * w)) {
            task.push(rows);
        }
    }
    outputs.into_par_iter().enumerate().for_each_init(
        || (Vec::new(), Vec::new()),
        |(local, ext): &mut (Vec<f64>, Vec<f64>), (t, mut rows)| {
            let y0 = t * rows_per_task;
            let count = rows.first().map_or(0, |rows| rows.len() / w);
            // Source rows y0 − r .. y0 + count + r (reflected), deinterleaved.
            let span = count + 2 * r;
            // Every value the task reads is written first: a longer buffer is not cleared.
            if local.len() < c * span * w {
                local.resize(c * span * w, 0.0);
            }
            for k in 0..span {
                let y = reflect(y0 as isize - r as isize + k as isize, h);
                let row = &src[y * w * c..(y + 1) * w * c];
                deinterleave_row(row, local, (c, span * w), k * w);
            }
            vectorize(
                #[inline(always)]
                || {
                    for (ch, out_rows) in rows.iter_mut().enumerate() {
                        let input = &local[ch * span * w..(ch + 1) * span * w];
                        for (i, out) in out_rows.chunks_exact_mut(w).enumerate() {
                            let Some(weights) = weights.as_deref() else {
                                out.copy_from_slice(&input[i * w..(i + 1) * w]);
                                continue;
                            };
                            // Down the columns: row y from rows y ± j.
                            let k = i + r;
                            for (o, x) in out.iter_mut().zip(&input[k * w..(k + 1) * w]) {
                                *o = x * weights[0];
                            }
                            for j in (1..=r).rev() {
                                let xa = &input[(k - j) * w..(k - j + 1) * w];
                                let xb = &input[(k + j) * w..(k + j + 1) * w];
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
                    }
                },
            )
        },
    );
}

/// Copies the `c` interleaved channels of `row` into `local`, channel `ch` at
/// `ch · plane + at` (one plane every `plane` values). Written value by value with its
/// index computed each time, this took 45% of the smoothing's time.
fn deinterleave_row(row: &[f64], local: &mut [f64], (c, plane): (usize, usize), at: usize) {
    let w = row.len() / c.max(1);
    if c == 3 {
        // Three streams without an index per value: most images are RGB.
        let (first, rest) = local.split_at_mut(plane);
        let (second, third) = rest.split_at_mut(plane);
        let (r, g, b) = (
            &mut first[at..at + w],
            &mut second[at..at + w],
            &mut third[at..at + w],
        );
        for (((r, g), b), px) in r.iter_mut().zip(g).zip(b).zip(row.chunks_exact(3)) {
            if let &[x, y, z] = px {
                (*r, *g, *b) = (x, y, z);
            }
        }
        return;
    }
    for ch in 0..c {
        let out = &mut local[ch * plane + at..ch * plane + at + w];
        for (o, px) in out.iter_mut().zip(row.chunks_exact(c)) {
            *o = px[ch];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The planar smoothing gives [`filter_axis`]'s values on both axes of the interleaved
    /// image, bit for bit: widths below, at and past whole 8-value chunks, kernels wider than
    /// the image (reflected more than once), no smoothing, and 1 to 4 channels.
    #[test]
    fn planes_are_both_axes_filtered_value_for_value() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut planes = Vec::new();
        for case in 0..40 {
            let (h, w) = (rng.random_range(1..40), rng.random_range(1..40));
            let c = 1 + case % 4;
            let sigma = [0.0, 0.5, 0.8, 2.0, 7.0][case % 5];
            let image = Array3::from_shape_fn((h, w, c), |_| rng.random_range(0.0..255.0));
            smooth_planes(image.view(), sigma, &mut planes);
            let mut expected = image.clone();
            filter_axis(&mut expected, Axis(0), sigma);
            filter_axis(&mut expected, Axis(1), sigma);
            for (ch, plane) in planes.iter().enumerate() {
                let want: Vec<u64> = expected
                    .index_axis(Axis(2), ch)
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                let got: Vec<u64> = plane.iter().map(|v| v.to_bits()).collect();
                assert_eq!(
                    got, want,
                    "case {case}: {h}×{w}×{c}, σ {sigma}, channel {ch}"
                );
            }
        }
    }
}
