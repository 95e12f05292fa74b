//! Weighted least squares with an unpenalised intercept: lime's surrogate model.
//!
//! This is scikit-learn's `Ridge(alpha, fit_intercept=True).fit(X, y, sample_weight=w)` with
//! the dense Cholesky solver: centre `X` and `y` by their weighted means, scale each row by
//! `√wᵢ`, then solve the normal equations (primal when there are no more features than
//! samples, dual otherwise). When the system is singular (possible with `alpha = 0`), the
//! minimum-norm least-squares solution is used, as scikit-learn falls back to.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::{Error, Result};

/// A fitted weighted ridge regression.
#[derive(Debug, Clone, PartialEq)]
pub struct RidgeFit {
    /// One coefficient per column of the design matrix, in column order.
    pub coef: Array1<f64>,
    /// The unpenalised intercept.
    pub intercept: f64,
}

impl RidgeFit {
    /// The prediction for one row.
    pub fn predict_row(&self, row: ArrayView1<'_, f64>) -> f64 {
        self.intercept + self.coef.dot(&row)
    }

    /// The weighted coefficient of determination R² on `(x, y, w)`, as scikit-learn's
    /// `r2_score(y, predict(x), sample_weight=w)`: 1 for a perfect fit (also when `y` is
    /// constant and predicted exactly), 0 when `y` is constant and missed.
    pub fn score(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, f64>,
        w: ArrayView1<'_, f64>,
    ) -> f64 {
        let sw: f64 = w.sum();
        let mean = y.iter().zip(w).map(|(y, w)| y * w).sum::<f64>() / sw;
        let (mut num, mut den) = (0.0, 0.0);
        for ((row, &yi), &wi) in x.outer_iter().zip(y).zip(w) {
            let r = yi - self.predict_row(row);
            num += wi * r * r;
            den += wi * (yi - mean) * (yi - mean);
        }
        if num == 0.0 {
            1.0
        } else if den == 0.0 {
            0.0
        } else {
            1.0 - num / den
        }
    }
}

/// Fits `y ≈ x·coef + intercept` minimising `Σ wᵢ (yᵢ − ŷᵢ)² + alpha‖coef‖²`.
///
/// ```
/// use ndarray::array;
/// let x = array![[0.0], [1.0], [2.0], [3.0]];
/// let y = array![1.0, 3.0, 5.0, 7.0];
/// let w = array![1.0, 1.0, 1.0, 1.0];
/// let fit = xai_lime::ridge::weighted_ridge(x.view(), y.view(), w.view(), 0.0)?;
/// assert!((fit.coef[0] - 2.0).abs() < 1e-12 && (fit.intercept - 1.0).abs() < 1e-12);
/// # Ok::<(), xai_lime::Error>(())
/// ```
pub fn weighted_ridge(
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    w: ArrayView1<'_, f64>,
    alpha: f64,
) -> Result<RidgeFit> {
    let (n, p) = x.dim();
    if y.len() != n || w.len() != n {
        return Err(Error::Shape {
            what: "ridge targets and weights".into(),
            actual: vec![y.len(), w.len()],
            expected: format!("{n} values each, one per row of the design matrix"),
        });
    }
    if n == 0 {
        return Err(Error::Data("cannot fit a surrogate on zero samples".into()));
    }
    if !(alpha >= 0.0 && alpha.is_finite()) {
        return Err(Error::param(
            "alpha",
            format!("must be finite and ≥ 0, got {alpha}"),
        ));
    }
    let sw: f64 = w.sum();
    if !(sw > 0.0 && sw.is_finite()) || w.iter().any(|&v| v.is_nan() || v < 0.0) {
        return Err(Error::Data(format!(
            "sample weights must be non-negative with a positive finite sum (sum is {sw})"
        )));
    }
    if x.iter().chain(y.iter()).any(|v| !v.is_finite()) {
        return Err(Error::Classifier(
            "the scores or the design matrix contain NaN or infinite values".into(),
        ));
    }
    let x_mean = x.t().dot(&w) / sw;
    let y_mean = y.dot(&w) / sw;
    let root_w = w.mapv(f64::sqrt);
    let mut xc = &x - &x_mean.view().insert_axis(Axis(0));
    xc *= &root_w.view().insert_axis(Axis(1));
    let yc = (&y - y_mean) * &root_w;

    let coef = if p == 0 {
        Array1::zeros(0)
    } else if p <= n {
        let mut gram = xc.t().dot(&xc);
        for i in 0..p {
            gram[[i, i]] += alpha;
        }
        let rhs = xc.t().dot(&yc);
        match cholesky_solve(&gram, &rhs) {
            Some(c) => c,
            None => min_norm_solve(&xc, &yc, alpha),
        }
    } else {
        let mut kernel = xc.dot(&xc.t());
        for i in 0..n {
            kernel[[i, i]] += alpha;
        }
        match cholesky_solve(&kernel, &yc) {
            Some(dual) => xc.t().dot(&dual),
            None => min_norm_solve(&xc, &yc, alpha),
        }
    };
    let intercept = y_mean - x_mean.dot(&coef);
    Ok(RidgeFit { coef, intercept })
}

/// The lower Cholesky factor of a symmetric positive definite matrix, or `None`.
pub(crate) fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= l[[j, k]] * l[[j, k]];
        }
        // A pivot lost in rounding means a singular matrix: the caller falls back to the
        // minimum-norm solution instead of returning one of infinitely many.
        if d.is_nan() || d <= a[[j, j]].abs() * 1e-12 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        l[[j, j]] = d;
        for i in j + 1..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = s / d;
        }
    }
    Some(l)
}

/// Solves `L Lᵀ x = b` given the lower factor `L`.
pub(crate) fn cholesky_substitute(l: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = l.nrows();
    let mut z = b.clone();
    for i in 0..n {
        let mut s = z[i];
        for k in 0..i {
            s -= l[[i, k]] * z[k];
        }
        z[i] = s / l[[i, i]];
    }
    for i in (0..n).rev() {
        let mut s = z[i];
        for k in i + 1..n {
            s -= l[[k, i]] * z[k];
        }
        z[i] = s / l[[i, i]];
    }
    z
}

fn cholesky_solve(a: &Array2<f64>, b: &Array1<f64>) -> Option<Array1<f64>> {
    cholesky(a).map(|l| cholesky_substitute(&l, b))
}

/// `V diag(σ/(σ²+α)) Uᵀ y` over the singular values above 1e-15, computed from the
/// eigen-decomposition of `XᵀX` (σ² = its eigenvalues): the minimum-norm solution.
fn min_norm_solve(x: &Array2<f64>, y: &Array1<f64>, alpha: f64) -> Array1<f64> {
    let gram = x.t().dot(x);
    let (values, vectors) = symmetric_eigen(&gram);
    let xty = x.t().dot(y);
    let mut coef = Array1::<f64>::zeros(gram.nrows());
    for (k, &lambda) in values.iter().enumerate() {
        let sigma = lambda.max(0.0).sqrt();
        if sigma <= 1e-15 {
            continue;
        }
        let v = vectors.column(k);
        // Vᵀ Xᵀ y = σ Uᵀ y, so σ/(σ²+α) · Uᵀy = (v·Xᵀy) / (σ² + α).
        let proj = v.dot(&xty) / (lambda + alpha);
        coef.scaled_add(proj, &v);
    }
    coef
}

/// Cyclic Jacobi eigen-decomposition of a small symmetric matrix: (eigenvalues, eigenvectors
/// as columns).
pub(crate) fn symmetric_eigen(a: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
    let n = a.nrows();
    let mut m = a.clone();
    let mut v = Array2::<f64>::eye(n);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[[i, j]] * m[[i, j]])
            .sum();
        let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[[p, q]];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[[q, q]] - m[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[[k, p]], m[[k, q]]);
                    m[[k, p]] = c * mkp - s * mkq;
                    m[[k, q]] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[[p, k]], m[[q, k]]);
                    m[[p, k]] = c * mpk - s * mqk;
                    m[[q, k]] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    (m.diag().to_owned(), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ridge_shrinks_but_leaves_the_intercept_alone() {
        let x = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]];
        let y = array![2.0, 3.0, 5.0, 0.0];
        let w = array![1.0, 1.0, 1.0, 1.0];
        let exact = weighted_ridge(x.view(), y.view(), w.view(), 0.0).unwrap();
        assert!((exact.coef[0] - 2.0).abs() < 1e-12 && (exact.coef[1] - 3.0).abs() < 1e-12);
        assert!(exact.intercept.abs() < 1e-12);
        assert!((exact.score(x.view(), y.view(), w.view()) - 1.0).abs() < 1e-12);
        let shrunk = weighted_ridge(x.view(), y.view(), w.view(), 1.0).unwrap();
        assert!(shrunk.coef[0] < 2.0 && shrunk.coef[1] < 3.0);
    }

    #[test]
    fn dual_and_singular_systems_are_solved() {
        // More features than samples (dual form), and duplicated columns with alpha = 0.
        let x = array![[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]];
        let y = array![1.0, 2.0];
        let w = array![1.0, 1.0];
        let fit = weighted_ridge(x.view(), y.view(), w.view(), 1.0).unwrap();
        assert!(fit.coef.iter().all(|c| c.is_finite()));
        let x = array![[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]];
        let y = array![2.0, 0.0, 2.0, 0.0];
        let w = array![1.0, 2.0, 3.0, 4.0];
        let fit = weighted_ridge(x.view(), y.view(), w.view(), 0.0).unwrap();
        assert!(
            (fit.coef[0] - 1.0).abs() < 1e-9 && (fit.coef[1] - 1.0).abs() < 1e-9,
            "{fit:?}"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = array![[1.0], [f64::NAN]];
        let y = array![1.0, 2.0];
        let w = array![1.0, 1.0];
        assert!(weighted_ridge(x.view(), y.view(), w.view(), 1.0).is_err());
        let x = array![[1.0], [0.0]];
        let w0 = array![0.0, 0.0];
        assert!(weighted_ridge(x.view(), y.view(), w0.view(), 1.0).is_err());
    }
}
