//! lime's feature selection: which superpixels the surrogate model may use.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice};
use serde::{Deserialize, Serialize};

use crate::ridge::{cholesky, cholesky_substitute, weighted_ridge};
use crate::{Error, Result};

/// How the features of the surrogate are chosen (lime's `feature_selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FeatureSelection {
    /// `forward_selection` for at most 6 features, `highest_weights` otherwise (lime's default).
    #[default]
    Auto,
    /// Every feature.
    None,
    /// The features with the largest |coefficient| of a ridge (alpha 0.01) on all features.
    HighestWeights,
    /// Greedy: add the feature that most improves the weighted R² of a least-squares fit.
    ForwardSelection,
    /// The largest support of at most `num_features` on the LARS-lasso regularisation path.
    LassoPath,
}

impl FeatureSelection {
    /// lime's name for the mode.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::None => "none",
            Self::HighestWeights => "highest_weights",
            Self::ForwardSelection => "forward_selection",
            Self::LassoPath => "lasso_path",
        }
    }

    /// The concrete mode `auto` stands for with `num_features` (other modes are themselves).
    pub fn resolve(self, num_features: usize) -> Self {
        match self {
            Self::Auto if num_features <= 6 => Self::ForwardSelection,
            Self::Auto => Self::HighestWeights,
            other => other,
        }
    }
}

impl std::str::FromStr for FeatureSelection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "auto" => Self::Auto,
            "none" => Self::None,
            "highest_weights" => Self::HighestWeights,
            "forward_selection" => Self::ForwardSelection,
            "lasso_path" => Self::LassoPath,
            _ => {
                return Err(Error::param(
                    "feature_selection",
                    format!("unknown mode `{s}`; known: auto, none, highest_weights, forward_selection, lasso_path"),
                ))
            }
        })
    }
}

impl std::fmt::Display for FeatureSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The features (column indices, in the order the surrogate uses them) that `mode` selects,
/// and the concrete mode used (`auto` resolved).
pub fn select_features(
    data: ArrayView2<'_, f64>,
    labels: ArrayView1<'_, f64>,
    weights: ArrayView1<'_, f64>,
    num_features: usize,
    mode: FeatureSelection,
) -> Result<(Vec<usize>, FeatureSelection)> {
    let p = data.ncols();
    let mode = mode.resolve(num_features);
    let used = match mode {
        FeatureSelection::Auto | FeatureSelection::None => (0..p).collect(),
        FeatureSelection::HighestWeights => {
            let fit = weighted_ridge(data, labels, weights, 0.01)?;
            let row0 = data.row(0);
            let mut order: Vec<usize> = (0..p).collect();
            // Stable: equal magnitudes keep the lower index first, as Python's sorted().
            order.sort_by(|&a, &b| {
                let va = (fit.coef[a] * row0[a]).abs();
                let vb = (fit.coef[b] * row0[b]).abs();
                vb.total_cmp(&va)
            });
            order.truncate(num_features);
            order
        }
        FeatureSelection::ForwardSelection => {
            forward_selection(data, labels, weights, num_features)?
        }
        FeatureSelection::LassoPath => lasso_path_support(data, labels, weights, num_features)?,
    };
    Ok((used, mode))
}

fn forward_selection(
    data: ArrayView2<'_, f64>,
    labels: ArrayView1<'_, f64>,
    weights: ArrayView1<'_, f64>,
    num_features: usize,
) -> Result<Vec<usize>> {
    let p = data.ncols();
    let mut used: Vec<usize> = Vec::new();
    for _ in 0..num_features.min(p) {
        let mut best = 0;
        let mut best_score = -1e8;
        for feature in 0..p {
            if used.contains(&feature) {
                continue;
            }
            let mut cols = used.clone();
            cols.push(feature);
            let x = data.select(Axis(1), &cols);
            let fit = weighted_ridge(x.view(), labels, weights, 0.0)?;
            let score = fit.score(x.view(), labels, weights);
            if score > best_score {
                best = feature;
                best_score = score;
            }
        }
        used.push(best);
    }
    Ok(used)
}

fn lasso_path_support(
    data: ArrayView2<'_, f64>,
    labels: ArrayView1<'_, f64>,
    weights: ArrayView1<'_, f64>,
    num_features: usize,
) -> Result<Vec<usize>> {
    let sw = weights.sum();
    let x_mean = data.t().dot(&weights) / sw;
    let y_mean = labels.dot(&weights) / sw;
    let root_w = weights.mapv(f64::sqrt);
    let mut x = &data - &x_mean.view().insert_axis(Axis(0));
    x *= &root_w.view().insert_axis(Axis(1));
    let y = (&labels - y_mean) * &root_w;
    let coefs = lars_lasso_path(&x, &y);
    let p = data.ncols();
    if coefs.len() <= 1 {
        return Ok((0..p).collect());
    }
    let support = |c: &Array1<f64>| -> Vec<usize> { (0..p).filter(|&j| c[j] != 0.0).collect() };
    for c in coefs.iter().skip(1).rev() {
        let nz = support(c);
        if nz.len() <= num_features {
            return Ok(nz);
        }
    }
    Ok(support(&coefs[1]))
}

/// The coefficients along the LARS-lasso path (Efron et al., 2004) of `y` on `x`, one vector
/// per step, starting from zeros: scikit-learn's `lars_path(x, y, method="lasso")` with its
/// defaults (no Gram matrix, `alpha_min = 0`, at most 500 steps).
pub fn lars_lasso_path(x: &Array2<f64>, y: &Array1<f64>) -> Vec<Array1<f64>> {
    const MAX_ITER: usize = 500;
    let tiny32 = f64::from(f32::MIN_POSITIVE);
    let equality_tolerance = f64::from(f32::EPSILON);
    let (n_samples, n_features) = x.dim();
    let max_features = MAX_ITER.min(n_features);
    // Columns are permuted as variables enter and leave: the active ones come first.
    let mut x = x.clone();
    let mut indices: Vec<usize> = (0..n_features).collect();
    let mut cov: Vec<f64> = x.t().dot(y).to_vec();
    let mut coefs: Vec<Array1<f64>> = vec![Array1::zeros(n_features)];
    let mut alphas: Vec<f64> = vec![0.0];
    let mut active: Vec<usize> = Vec::new();
    let mut sign_active: Vec<f64> = Vec::new();
    let mut l = Array2::<f64>::zeros((max_features, max_features));
    let mut n_active = 0usize;
    let mut n_iter = 0usize;
    let mut drop = false;
    let swap_cols = |x: &mut Array2<f64>, a: usize, b: usize| {
        if a != b {
            for mut row in x.outer_iter_mut() {
                row.swap(a, b);
            }
        }
    };
    loop {
        // np.argmax: the first of the largest |correlations| among the inactive variables.
        let (mut c_idx, mut c_signed, mut best) = (0usize, 0f64, -1f64);
        for (i, &v) in cov.iter().enumerate() {
            if v.abs() > best {
                (c_idx, c_signed, best) = (i, v, v.abs());
            }
        }
        let c = if cov.is_empty() { 0.0 } else { c_signed.abs() };
        let alpha = c / n_samples as f64;
        if alphas.len() <= n_iter {
            alphas.push(0.0);
            coefs.push(Array1::zeros(n_features));
        }
        alphas[n_iter] = alpha;
        if alpha <= equality_tolerance {
            break;
        }
        if n_iter >= MAX_ITER || n_active >= n_features {
            break;
        }
        if !drop {
            let (m, n) = (n_active, c_idx + n_active);
            let saved_cov = cov.clone();
            cov.swap(c_idx, 0);
            indices.swap(n, m);
            swap_cols(&mut x, n, m);
            cov.remove(0);
            let col = x.column(n_active).to_owned();
            let cc = col.dot(&col);
            let mut row: Vec<f64> = (0..n_active).map(|k| col.dot(&x.column(k))).collect();
            // Forward substitution with the current factor.
            for i in 0..n_active {
                let mut s = row[i];
                for k in 0..i {
                    s -= l[[i, k]] * row[k];
                }
                row[i] = s / l[[i, i]];
            }
            let v: f64 = row.iter().map(|r| r * r).sum();
            let diag = (cc - v).abs().sqrt().max(f64::EPSILON);
            if diag < 1e-7 {
                // Degenerate regressor: put its correlation to zero and try the next one.
                cov = saved_cov;
                cov[0] = 0.0;
                cov.swap(c_idx, 0);
                continue;
            }
            for (k, r) in row.iter().enumerate() {
                l[[n_active, k]] = *r;
            }
            l[[n_active, n_active]] = diag;
            active.push(indices[n_active]);
            sign_active.push(if c_signed > 0.0 {
                1.0
            } else if c_signed < 0.0 {
                -1.0
            } else {
                0.0
            });
            n_active += 1;
        }
        if n_iter > 0 && alphas[n_iter - 1] < alpha {
            break;
        }
        let l_active = leading(&l, n_active);
        let signs = Array1::from(sign_active[..n_active].to_vec());
        let mut least_squares = cholesky_substitute(&l_active, &signs);
        let aa;
        if least_squares.len() == 1 && least_squares[0] == 0.0 {
            least_squares[0] = 1.0;
            aa = 1.0;
        } else {
            let mut a = 1.0 / least_squares.dot(&signs).sqrt();
            let mut i = 0;
            while !a.is_finite() && i < 64 {
                let mut lr = l_active.clone();
                for d in 0..n_active {
                    lr[[d, d]] += 2f64.powi(i) * f64::EPSILON;
                }
                least_squares = cholesky_substitute(&lr, &signs);
                a = 1.0 / least_squares.dot(&signs).max(f64::EPSILON).sqrt();
                i += 1;
            }
            aa = a;
            least_squares *= aa;
        }
        let eq_dir = x
            .slice_axis(Axis(1), Slice::from(..n_active))
            .dot(&least_squares);
        let corr_eq_dir: Vec<f64> = (n_active..n_features)
            .map(|j| {
                let v = x.column(j).dot(&eq_dir);
                (v * 1e15).round_ties_even() / 1e15
            })
            .collect();
        let min_pos = |it: &mut dyn Iterator<Item = f64>| -> f64 {
            it.filter(|v| *v > 0.0).fold(f64::MAX, f64::min)
        };
        let g1 = min_pos(
            &mut cov
                .iter()
                .zip(&corr_eq_dir)
                .map(|(cv, ce)| (c - cv) / (aa - ce + tiny32)),
        );
        let g2 = min_pos(
            &mut cov
                .iter()
                .zip(&corr_eq_dir)
                .map(|(cv, ce)| (c + cv) / (aa + ce + tiny32)),
        );
        let mut gamma = g1.min(g2).min(c / aa);
        drop = false;
        let prev = coefs[n_iter].clone();
        let z: Vec<f64> = active
            .iter()
            .zip(least_squares.iter())
            .map(|(&j, &ls)| -prev[j] / (ls + tiny32))
            .collect();
        let z_pos = min_pos(&mut z.iter().copied());
        let mut dropped: Vec<usize> = Vec::new();
        if z_pos < gamma {
            dropped = (0..z.len()).filter(|&i| z[i] == z_pos).rev().collect();
            for &i in &dropped {
                sign_active[i] = -sign_active[i];
            }
            gamma = z_pos;
            drop = true;
        }
        n_iter += 1;
        if coefs.len() <= n_iter {
            coefs.push(Array1::zeros(n_features));
            alphas.push(0.0);
        }
        let mut next = Array1::<f64>::zeros(n_features);
        for (k, &j) in active.iter().enumerate() {
            next[j] = prev[j] + gamma * least_squares[k];
        }
        coefs[n_iter] = next;
        for (cv, ce) in cov.iter_mut().zip(&corr_eq_dir) {
            *cv -= gamma * ce;
        }
        if drop {
            for &ii in &dropped {
                active.remove(ii);
                sign_active.remove(ii);
                for i in ii..n_active - 1 {
                    swap_cols(&mut x, i, i + 1);
                    indices.swap(i, i + 1);
                }
            }
            n_active -= 1;
            // Rebuild the factor of the remaining active set.
            let xa = x.slice_axis(Axis(1), Slice::from(..n_active)).to_owned();
            if let Some(f) = cholesky(&xa.t().dot(&xa)) {
                l.slice_axis_mut(Axis(0), Slice::from(..n_active))
                    .slice_axis_mut(Axis(1), Slice::from(..n_active))
                    .assign(&f);
            }
            let coef_now = &coefs[n_iter];
            let beta: Array1<f64> = active.iter().map(|&j| coef_now[j]).collect();
            let residual = y - &xa.dot(&beta);
            let temp = x.column(n_active).dot(&residual);
            cov.insert(0, temp);
        }
    }
    coefs.truncate(n_iter + 1);
    coefs
}

/// The leading `n × n` block of a square matrix.
fn leading(m: &Array2<f64>, n: usize) -> Array2<f64> {
    m.slice_axis(Axis(0), Slice::from(..n))
        .slice_axis(Axis(1), Slice::from(..n))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn toy() -> (Array2<f64>, Array1<f64>, Array1<f64>) {
        // y depends strongly on feature 2, weakly on feature 0, not on feature 1.
        let x = array![
            [1.0, 1.0, 1.0],
            [0.0, 1.0, 1.0],
            [1.0, 0.0, 1.0],
            [1.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0]
        ];
        let y = x.column(2).mapv(|v| 3.0 * v) + x.column(0).mapv(|v| 0.5 * v);
        let w = Array1::from_elem(8, 1.0);
        (x, y, w)
    }

    #[test]
    fn every_mode_finds_the_strong_feature_first() {
        let (x, y, w) = toy();
        for mode in [
            FeatureSelection::HighestWeights,
            FeatureSelection::ForwardSelection,
            FeatureSelection::LassoPath,
        ] {
            let (used, _) = select_features(x.view(), y.view(), w.view(), 1, mode).unwrap();
            assert_eq!(used, vec![2], "{mode}");
        }
        let (used, mode) =
            select_features(x.view(), y.view(), w.view(), 2, FeatureSelection::Auto).unwrap();
        assert_eq!(mode, FeatureSelection::ForwardSelection);
        assert_eq!(used, vec![2, 0]);
    }

    #[test]
    fn auto_resolves_like_lime() {
        assert_eq!(
            FeatureSelection::Auto.resolve(6),
            FeatureSelection::ForwardSelection
        );
        assert_eq!(
            FeatureSelection::Auto.resolve(7),
            FeatureSelection::HighestWeights
        );
        assert_eq!(
            "lasso-path".parse::<FeatureSelection>().unwrap(),
            FeatureSelection::LassoPath
        );
        assert!("magic".parse::<FeatureSelection>().is_err());
    }
}
