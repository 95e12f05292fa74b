//! Turning a saliency map into a mask, with the rule stated and chosen by the caller.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2};

use crate::error::{check_finite, Error, Result};

/// How a map becomes a binary mask. `true` always marks the *salient* pixels (high values).
///
/// Parsed from the CLI's spelling: `threshold:0.5`, `top:20` (per cent of pixels),
/// `count:500` (pixels) or `otsu`.
///
/// ```
/// use ndarray::array;
/// use xai_metrics::Binarize;
///
/// let map = array![[0.1f32, 0.9], [0.4, 0.6]];
/// let b: Binarize = "top:50".parse()?;
/// assert_eq!(b.apply(map.view())?, array![[false, true], [false, true]]);
/// assert_eq!(Binarize::Threshold(0.4).apply(map.view())?, array![[false, true], [true, true]]);
/// assert_eq!(b.to_string(), "top:50");
/// assert!("top:120".parse::<Binarize>().is_err());
/// # Ok::<(), xai_metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Binarize {
    /// Pixels with value `>= t`.
    Threshold(f32),
    /// The given per cent (0–100) of pixels with the highest values, rounded to the nearest
    /// pixel count; ties go to the earlier pixel in row-major order.
    TopPercent(f32),
    /// The `n` pixels with the highest values (ties: earlier pixel first). With `n` the area of
    /// a reference mask no threshold is chosen by hand.
    TopCount(usize),
    /// Otsu's threshold on a 256-bin histogram of the map between its minimum and maximum:
    /// the pixels in the bins above it. A constant map gives an empty mask.
    Otsu,
}

impl Binarize {
    /// The mask of `map` under this rule. Refuses maps with NaN or infinities.
    pub fn apply(&self, map: ArrayView2<'_, f32>) -> Result<Array2<bool>> {
        check_finite("map", map.iter())?;
        let (h, w) = map.dim();
        let n = h * w;
        match *self {
            Binarize::Threshold(t) => {
                if !t.is_finite() {
                    return Err(Error::param("threshold", "give a finite threshold"));
                }
                Ok(map.mapv(|v| v >= t))
            }
            Binarize::TopPercent(p) => {
                if !(0.0..=100.0).contains(&p) {
                    return Err(Error::param(
                        "top",
                        format!("{p} is not a percentage; give 0 to 100"),
                    ));
                }
                let k = ((p as f64 / 100.0) * n as f64).round() as usize;
                Ok(top_count(map, k.min(n)))
            }
            Binarize::TopCount(k) => Ok(top_count(map, k.min(n))),
            Binarize::Otsu => Ok(otsu(map)),
        }
    }
}

fn top_count(map: ArrayView2<'_, f32>, k: usize) -> Array2<bool> {
    let values: Vec<f32> = map.iter().copied().collect();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let mut flat = vec![false; values.len()];
    for &i in &order[..k] {
        flat[i] = true;
    }
    Array2::from_shape_vec(map.dim(), flat).unwrap_or_else(|_| Array2::from_elem(map.dim(), false))
}

/// The Otsu threshold index `k` over `hist`: class 0 holds bins `0..=k`.
pub(crate) fn otsu_bin(hist: &[u64]) -> usize {
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0) = (0f64, 0f64);
    let (mut best, mut best_var) = (0usize, -1f64);
    for (k, &c) in hist.iter().enumerate() {
        w0 += c as f64;
        sum0 += k as f64 * c as f64;
        let w1 = total as f64 - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let var = w0 * w1 * (m0 - m1) * (m0 - m1);
        if var > best_var {
            best_var = var;
            best = k;
        }
    }
    best
}

fn otsu(map: ArrayView2<'_, f32>) -> Array2<bool> {
    let min = map.iter().copied().fold(f32::INFINITY, f32::min);
    let max = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if map.is_empty() || max <= min {
        return Array2::from_elem(map.dim(), false);
    }
    let bin = |v: f32| (((v - min) / (max - min) * 256.0) as usize).min(255);
    let mut hist = [0u64; 256];
    for &v in map.iter() {
        hist[bin(v)] += 1;
    }
    let k = otsu_bin(&hist);
    map.mapv(|v| bin(v) > k)
}

impl fmt::Display for Binarize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binarize::Threshold(t) => write!(f, "threshold:{t}"),
            Binarize::TopPercent(p) => write!(f, "top:{p}"),
            Binarize::TopCount(n) => write!(f, "count:{n}"),
            Binarize::Otsu => f.write_str("otsu"),
        }
    }
}

impl FromStr for Binarize {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        let bad = || {
            Error::param(
                "binarize",
                format!("`{s}`: use threshold:T (e.g. threshold:0.5), top:P (per cent, e.g. top:20), count:N or otsu"),
            )
        };
        if s == "otsu" {
            return Ok(Binarize::Otsu);
        }
        let (kind, value) = s.split_once(':').ok_or_else(bad)?;
        let b = match kind {
            "threshold" => Binarize::Threshold(value.parse().map_err(|_| bad())?),
            "top" => Binarize::TopPercent(value.parse().map_err(|_| bad())?),
            "count" => Binarize::TopCount(value.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        match b {
            Binarize::Threshold(t) if !t.is_finite() => Err(bad()),
            Binarize::TopPercent(p) if !(0.0..=100.0).contains(&p) => Err(Error::param(
                "binarize",
                format!("top:{p}: the percentage must be between 0 and 100"),
            )),
            b => Ok(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn otsu_separates_two_levels_with_high_values_salient() {
        let map = array![[0.1f32, 0.12, 0.9], [0.11, 0.95, 0.1]];
        let m = Binarize::Otsu.apply(map.view()).unwrap();
        assert_eq!(m, array![[false, false, true], [false, true, false]]);
        let flat = array![[0.3f32, 0.3]];
        assert!(Binarize::Otsu
            .apply(flat.view())
            .unwrap()
            .iter()
            .all(|&v| !v));
    }

    #[test]
    fn nan_maps_and_bad_specs_are_refused() {
        let map = array![[f32::NAN, 0.0]];
        assert!(Binarize::Otsu.apply(map.view()).is_err());
        for s in ["top", "top:x", "median", "threshold:nan", "top:-1"] {
            assert!(s.parse::<Binarize>().is_err(), "{s}");
        }
        assert_eq!(
            "count:7".parse::<Binarize>().unwrap(),
            Binarize::TopCount(7)
        );
    }
}
