//! Map arithmetic shared by every method: resizing and min-max scaling, exactly as
//! pytorch-grad-cam does them (`cv2.resize` with `INTER_LINEAR`, `scale_cam_image`).

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

/// The epsilon of the reference's min-max scaling: `x / (max + 1e-7)` after subtracting the min.
pub const SCALE_EPS: f32 = 1e-7;

/// `max(v, 0)` that keeps NaN, as numpy's `np.maximum(v, 0)`.
pub(crate) fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// Per output index: the two source indices and the weight of the second one.
fn linear_taps(n_in: usize, n_out: usize, align_corners: bool) -> Vec<(usize, usize, f32)> {
    (0..n_out)
        .map(|d| {
            let s = if align_corners {
                if n_out > 1 {
                    d as f64 * (n_in as f64 - 1.0) / (n_out as f64 - 1.0)
                } else {
                    0.0
                }
            } else {
                (d as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5
            };
            let mut i0 = s.floor();
            let mut f = s - i0;
            if i0 < 0.0 {
                i0 = 0.0;
                f = 0.0;
            }
            let mut i0 = i0 as usize;
            if i0 + 1 >= n_in {
                i0 = n_in - 1;
                f = 0.0;
            }
            let i1 = (i0 + 1).min(n_in - 1);
            (i0, i1, f as f32)
        })
        .collect()
}

fn resize_impl(src: ArrayView2<'_, f32>, height: usize, width: usize, align: bool) -> Array2<f32> {
    let (h, w) = src.dim();
    if h == 0 || w == 0 || height == 0 || width == 0 {
        return Array2::zeros((height, width));
    }
    let xs = linear_taps(w, width, align);
    let ys = linear_taps(h, height, align);
    // Horizontal pass first, then vertical (separable, f32 as the reference).
    let mut rows = Array2::<f32>::zeros((h, width));
    for r in 0..h {
        for (c, &(i0, i1, f)) in xs.iter().enumerate() {
            rows[[r, c]] = (1.0 - f) * src[[r, i0]] + f * src[[r, i1]];
        }
    }
    let mut out = Array2::<f32>::zeros((height, width));
    for (r, &(i0, i1, f)) in ys.iter().enumerate() {
        for c in 0..width {
            out[[r, c]] = (1.0 - f) * rows[[i0, c]] + f * rows[[i1, c]];
        }
    }
    out
}

/// Bilinear resize as `cv2.resize(map, (width, height))` with `INTER_LINEAR` on float32 (equal
/// to PyTorch's bilinear interpolation with `align_corners=False`, no antialiasing).
///
/// ```
/// use ndarray::array;
/// let up = xai_cam::map::resize_linear(array![[0.0f32, 1.0]].view(), 1, 4);
/// assert_eq!(up, array![[0.0f32, 0.25, 0.75, 1.0]]);
/// ```
pub fn resize_linear(src: ArrayView2<'_, f32>, height: usize, width: usize) -> Array2<f32> {
    resize_impl(src, height, width, false)
}

/// Bilinear resize with `align_corners=True` (PyTorch's `UpsamplingBilinear2d`), the
/// upsampling ScoreCAM uses for its masks: the corner pixels of input and output coincide.
///
/// ```
/// use ndarray::array;
/// let up = xai_cam::map::resize_align_corners(array![[0.0f32, 3.0]].view(), 1, 4);
/// assert_eq!(up, array![[0.0f32, 1.0, 2.0, 3.0]]);
/// ```
pub fn resize_align_corners(src: ArrayView2<'_, f32>, height: usize, width: usize) -> Array2<f32> {
    resize_impl(src, height, width, true)
}

/// The interpolation matrix `(n_out, n_in)` of a 1-D linear resize: `out = R · in`.
pub(crate) fn interpolation_matrix(n_in: usize, n_out: usize, align_corners: bool) -> Vec<f32> {
    let mut m = vec![0f32; n_out * n_in];
    for (d, (i0, i1, f)) in linear_taps(n_in, n_out, align_corners)
        .into_iter()
        .enumerate()
    {
        m[d * n_in + i0] += 1.0 - f;
        m[d * n_in + i1] += f;
    }
    m
}

/// Min-max scaling in place, as the reference's `scale_cam_image`: `x ← x − min`, then
/// `x ← x / (max + 1e-7)`. A constant map becomes all zeros (never NaN); NaN propagates.
///
/// ```
/// use ndarray::array;
/// let mut m = array![[1.0f32, 3.0], [2.0, 1.0]];
/// xai_cam::map::scale_min_max(&mut m);
/// assert!((m[[0, 1]] - 1.0).abs() < 1e-6 && m[[0, 0]] == 0.0);
/// let mut flat = array![[5.0f32, 5.0]];
/// xai_cam::map::scale_min_max(&mut flat);
/// assert_eq!(flat, array![[0.0f32, 0.0]]);
/// ```
pub fn scale_min_max(map: &mut Array2<f32>) {
    if map.iter().any(|v| v.is_nan()) {
        // numpy's min/max return NaN, which then spreads over the whole map.
        map.fill(f32::NAN);
        return;
    }
    let min = map.iter().copied().fold(f32::INFINITY, f32::min);
    map.mapv_inplace(|v| v - min);
    let max = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let denom = SCALE_EPS + max;
    map.mapv_inplace(|v| v / denom);
}

/// The reference's whole post-processing of per-layer raw maps into one map per image:
/// per layer ReLU, min-max scaling ([`scale_min_max`]), resize to `(height, width)`
/// ([`resize_linear`]); then the mean over layers and a second min-max scaling.
///
/// `layers` holds one `(batch, h, w)` raw map per target layer (sizes may differ between
/// layers). The result is `(batch, height, width)` in `[0, 1)`.
///
/// ```
/// use ndarray::Array3;
/// let raw = Array3::from_shape_fn((1, 2, 2), |(_, i, j)| (i * 2 + j) as f32 - 1.0);
/// let map = xai_cam::map::normalise(&[raw.view()], 4, 4);
/// assert_eq!(map.dim(), (1, 4, 4));
/// assert!(map.iter().all(|&v| (0.0..1.0).contains(&v)));
/// ```
pub fn normalise(layers: &[ArrayView3<'_, f32>], height: usize, width: usize) -> Array3<f32> {
    let batch = layers.first().map_or(0, |l| l.dim().0);
    let mut out = Array3::<f32>::zeros((batch, height, width));
    for b in 0..batch {
        let mut sum = Array2::<f32>::zeros((height, width));
        for layer in layers {
            let mut m = layer.index_axis(Axis(0), b).mapv(relu);
            scale_min_max(&mut m);
            let r = resize_linear(m.view(), height, width);
            sum += &r.mapv(relu);
        }
        let mut mean = sum / layers.len().max(1) as f32;
        scale_min_max(&mut mean);
        out.index_axis_mut(Axis(0), b).assign(&mean);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn resize_matches_the_cv2_formula_on_a_downscale() {
        // 4 -> 2: s = (d + 0.5) * 2 - 0.5 = 0.5, 2.5
        let m = resize_linear(array![[0.0f32, 1.0, 2.0, 3.0]].view(), 1, 2);
        assert_eq!(m, array![[0.5f32, 2.5]]);
    }

    #[test]
    fn identity_resize_keeps_the_map() {
        let a = array![[0.1f32, 0.7], [0.3, 0.9]];
        assert_eq!(resize_linear(a.view(), 2, 2), a);
        assert_eq!(resize_align_corners(a.view(), 2, 2), a);
    }

    #[test]
    fn interpolation_matrix_equals_resize() {
        let src = array![[0.0f32, 2.0, 5.0]];
        for align in [false, true] {
            let m = interpolation_matrix(3, 7, align);
            let r = resize_impl(src.view(), 1, 7, align);
            for d in 0..7 {
                let v: f32 = (0..3).map(|i| m[d * 3 + i] * src[[0, i]]).sum();
                assert!((v - r[[0, d]]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn zero_map_stays_zero_and_nan_spreads() {
        let z = Array3::<f32>::zeros((1, 3, 3));
        let out = normalise(&[z.view()], 6, 6);
        assert!(out.iter().all(|&v| v == 0.0));
        let mut m = array![[1.0f32, f32::NAN], [0.0, 2.0]];
        scale_min_max(&mut m);
        assert!(m.iter().all(|v| v.is_nan()));
    }
}
