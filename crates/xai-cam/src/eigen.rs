//! The first principal component projection used by EigenCAM, EigenGradCAM and the
//! `eigen_smooth` option, with a documented sign convention.

use ndarray::{Array2, ArrayView3};

/// Which of the two signs of the principal component a projection takes.
///
/// The reference (`get_2d_projection`) projects on the first right-singular vector that
/// LAPACK returns, whose sign is arbitrary: the map can come out inverted, and the ReLU that
/// follows then erases it (pytorch-grad-cam issues #315, #364). xai fixes the sign instead:
///
/// - [`EigenSign::PeakPositive`] (the default): the projection's entry of largest magnitude is
///   positive, i.e. `|max p| ≥ |min p|`. This is the correction the reference itself applies in
///   its `SegEigenCAM` helper, and it keeps the strongest structure in the map.
/// - [`EigenSign::PeakNegative`]: the opposite sign. Together the two cover both answers
///   LAPACK can give, which is how the parity tests compare with the reference.
///
/// The choice is deterministic (up to an exact tie between `|max p|` and `|min p|`, where
/// the positive peak wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EigenSign {
    /// The largest-magnitude entry of the projection is positive.
    #[default]
    PeakPositive,
    /// The largest-magnitude entry of the projection is negative.
    PeakNegative,
}

/// The projection of a `(channels, h, w)` activation on its first principal component, as
/// `(h, w)`: NaN becomes 0, each channel is centred over space, and `p = M · v₁` where
/// `M` is the `(h·w, channels)` centred matrix and `v₁` its first right-singular vector.
///
/// `v₁` is found from the smaller of the two Gram matrices `MᵀM` and `MMᵀ` (in f64, by
/// cyclic Jacobi rotations), so the cost is cubic in `min(h·w, channels)`. A constant
/// activation gives an all-zero projection.
///
/// ```
/// use ndarray::Array3;
/// use xai_cam::{eigen::projection, EigenSign};
/// // Two channels that both follow the same spatial pattern: the projection is that pattern.
/// let a = Array3::from_shape_fn((2, 2, 2), |(k, i, j)| (k + 1) as f32 * (i * 2 + j) as f32);
/// let p = projection(a.view(), EigenSign::PeakPositive);
/// assert!(p[[1, 1]] > p[[1, 0]] && p[[1, 0]] > p[[0, 1]] && p[[0, 1]] > p[[0, 0]]);
/// let flat = Array3::<f32>::ones((3, 2, 2));
/// assert!(projection(flat.view(), EigenSign::PeakPositive).iter().all(|&v| v == 0.0));
/// ```
pub fn projection(activation: ArrayView3<'_, f32>, sign: EigenSign) -> Array2<f32> {
    let (k, h, w) = activation.dim();
    let n = h * w;
    // M: (n, k), centred per channel.
    let mut m = vec![0f64; n * k];
    for c in 0..k {
        let mut mean = 0f64;
        for i in 0..h {
            for j in 0..w {
                let v = activation[[c, i, j]];
                let v = if v.is_nan() { 0.0 } else { v as f64 };
                m[(i * w + j) * k + c] = v;
                mean += v;
            }
        }
        mean /= n.max(1) as f64;
        for r in 0..n {
            m[r * k + c] -= mean;
        }
    }
    let mut p = vec![0f64; n];
    if n > 0 && k > 0 {
        if n <= k {
            // G = M Mᵀ (n × n); p = M v₁ = σ₁ u₁.
            let mut g = vec![0f64; n * n];
            for a in 0..n {
                for b in a..n {
                    let s: f64 = (0..k).map(|c| m[a * k + c] * m[b * k + c]).sum();
                    g[a * n + b] = s;
                    g[b * n + a] = s;
                }
            }
            let (lambda, u) = top_eigenpair(g, n);
            let sigma = lambda.max(0.0).sqrt();
            for (pi, ui) in p.iter_mut().zip(&u) {
                *pi = sigma * ui;
            }
        } else {
            // G = Mᵀ M (k × k); p = M v₁.
            let mut g = vec![0f64; k * k];
            for a in 0..k {
                for b in a..k {
                    let s: f64 = (0..n).map(|r| m[r * k + a] * m[r * k + b]).sum();
                    g[a * k + b] = s;
                    g[b * k + a] = s;
                }
            }
            let (_, v) = top_eigenpair(g, k);
            for (r, pr) in p.iter_mut().enumerate() {
                *pr = (0..k).map(|c| m[r * k + c] * v[c]).sum();
            }
        }
    }
    let max = p.iter().copied().fold(0f64, f64::max);
    let min = p.iter().copied().fold(0f64, f64::min);
    let peak_positive = max >= -min;
    let flip = match sign {
        EigenSign::PeakPositive => !peak_positive,
        EigenSign::PeakNegative => peak_positive && max > 0.0,
    };
    let s = if flip { -1.0 } else { 1.0 };
    Array2::from_shape_fn((h, w), |(i, j)| (s * p[i * w + j]) as f32)
}

/// The largest eigenvalue of the symmetric `n × n` matrix `g` (row-major) and a unit
/// eigenvector for it, by cyclic Jacobi rotations.
fn top_eigenpair(mut a: Vec<f64>, n: usize) -> (f64, Vec<f64>) {
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    if scale == 0.0 {
        let mut e = vec![0f64; n];
        e[0] = 1.0;
        return (0.0, e);
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let app = a[p * n + p];
                let aqq = a[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← Jᵀ A J, on rows/columns p and q.
                for r in 0..n {
                    let arp = a[r * n + p];
                    let arq = a[r * n + q];
                    a[r * n + p] = c * arp - s * arq;
                    a[r * n + q] = s * arp + c * arq;
                }
                for col in 0..n {
                    let apc = a[p * n + col];
                    let aqc = a[q * n + col];
                    a[p * n + col] = c * apc - s * aqc;
                    a[q * n + col] = s * apc + c * aqc;
                }
                for r in 0..n {
                    let vrp = v[r * n + p];
                    let vrq = v[r * n + q];
                    v[r * n + p] = c * vrp - s * vrq;
                    v[r * n + q] = s * vrp + c * vrq;
                }
            }
        }
    }
    let mut best = 0;
    for i in 1..n {
        if a[i * n + i] > a[best * n + best] {
            best = i;
        }
    }
    let vec = (0..n).map(|r| v[r * n + best]).collect();
    (a[best * n + best], vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_top_eigenpair() {
        // [[2,1],[1,2]]: eigenvalues 3 (1,1)/√2 and 1.
        let (l, v) = top_eigenpair(vec![2.0, 1.0, 1.0, 2.0], 2);
        assert!((l - 3.0).abs() < 1e-12);
        assert!((v[0].abs() - v[1].abs()).abs() < 1e-12 && v[0] * v[1] > 0.0);
        let (l, v) = top_eigenpair(vec![1.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 2.0], 3);
        assert_eq!(l, 5.0);
        assert_eq!(
            v.iter().map(|x| x.abs()).collect::<Vec<_>>(),
            vec![0.0, 1.0, 0.0]
        );
    }

    #[test]
    fn both_gram_paths_agree() {
        // Same activation seen as few channels / many pixels and the reverse path.
        let a = ndarray::Array3::from_shape_fn((3, 4, 4), |(k, i, j)| {
            ((k * 7 + i * 3 + j * 5) % 11) as f32 * 0.3 - (k as f32)
        });
        let p = projection(a.view(), EigenSign::PeakPositive);
        // The 2×2 corner with 3 channels (k < n) and the same padded with zero channels
        // (k > n) must give the same projection.
        let small = ndarray::Array3::from_shape_fn((3, 2, 2), |(c, i, j)| a[[c, i, j]]); // k=3 < n=4
        let mut wide = ndarray::Array3::<f32>::zeros((6, 2, 2)); // k=6 > n=4
        for c in 0..3 {
            wide.index_axis_mut(ndarray::Axis(0), c)
                .assign(&small.index_axis(ndarray::Axis(0), c));
        }
        let p1 = projection(small.view(), EigenSign::PeakPositive);
        let p2 = projection(wide.view(), EigenSign::PeakPositive);
        for (x, y) in p1.iter().zip(p2.iter()) {
            assert!((x - y).abs() < 1e-5, "{p1:?} vs {p2:?}");
        }
        assert!(p.iter().all(|v| v.is_finite()));
        let neg = projection(a.view(), EigenSign::PeakNegative);
        for (x, y) in p.iter().zip(neg.iter()) {
            assert_eq!(*x, -*y);
        }
    }
}
