//! Agreement between two explanations: IoU and Dice of masks, rank correlation of maps, and
//! IoU curves over a sweep of binarisations (so one threshold does not decide the story).

use ndarray::ArrayView2;

use crate::binarize::Binarize;
use crate::error::{check_finite, Error, Result};

fn same_shape(what: &str, a: (usize, usize), b: (usize, usize)) -> Result<()> {
    if a != b {
        return Err(Error::shape(
            format!("{what}: the second input"),
            &[b.0, b.1],
            format!("{a:?}, the shape of the first"),
        ));
    }
    Ok(())
}

fn counts(a: ArrayView2<'_, bool>, b: ArrayView2<'_, bool>) -> Result<(usize, usize, usize)> {
    same_shape("mask agreement", a.dim(), b.dim())?;
    let (mut both, mut na, mut nb) = (0, 0, 0);
    for (&x, &y) in a.iter().zip(b.iter()) {
        both += usize::from(x && y);
        na += usize::from(x);
        nb += usize::from(y);
    }
    Ok((both, na, nb))
}

/// Intersection over union of two masks of the same shape, in `[0, 1]`. Two empty masks agree
/// perfectly (1).
///
/// ```
/// use ndarray::array;
/// let a = array![[true, true], [false, false]];
/// let b = array![[true, false], [true, false]];
/// assert!((xai_metrics::iou(a.view(), b.view())? - 1.0 / 3.0).abs() < 1e-6);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn iou(a: ArrayView2<'_, bool>, b: ArrayView2<'_, bool>) -> Result<f32> {
    let (both, na, nb) = counts(a, b)?;
    let union = na + nb - both;
    Ok(if union == 0 {
        1.0
    } else {
        both as f32 / union as f32
    })
}

/// Dice coefficient `2|A∩B| / (|A| + |B|)` of two masks, in `[0, 1]`; two empty masks give 1.
///
/// ```
/// use ndarray::array;
/// let a = array![[true, true], [false, false]];
/// let b = array![[true, false], [true, false]];
/// assert!((xai_metrics::dice(a.view(), b.view())? - 0.5).abs() < 1e-6);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn dice(a: ArrayView2<'_, bool>, b: ArrayView2<'_, bool>) -> Result<f32> {
    let (both, na, nb) = counts(a, b)?;
    Ok(if na + nb == 0 {
        1.0
    } else {
        2.0 * both as f32 / (na + nb) as f32
    })
}

/// Ranks from 1, ties sharing their average rank (as `scipy.stats.rankdata`).
pub(crate) fn ranks(values: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0f64; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman rank correlation of two maps (Pearson correlation of their average ranks, as
/// `scipy.stats.spearmanr`), in `[-1, 1]`. NaN when either map is constant, as scipy.
///
/// ```
/// use ndarray::array;
/// let a = array![[0.1f32, 0.5], [0.2, 0.9]];
/// let b = a.mapv(|v| v * v);                       // a monotone transform: same ranks
/// assert!((xai_metrics::spearman(a.view(), b.view())? - 1.0).abs() < 1e-12);
/// let c = a.mapv(|v| -v);
/// assert!((xai_metrics::spearman(a.view(), c.view())? + 1.0).abs() < 1e-12);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn spearman(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Result<f64> {
    same_shape("rank correlation", a.dim(), b.dim())?;
    check_finite("map", a.iter())?;
    check_finite("map", b.iter())?;
    let ra = ranks(&a.iter().copied().collect::<Vec<_>>());
    let rb = ranks(&b.iter().copied().collect::<Vec<_>>());
    Ok(pearson(&ra, &rb))
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// IoU of two maps binarised with each rule of `rules` in turn (the same rule on both maps):
/// one value per rule. [`thresholds`] and [`top_percents`] make the usual sweeps.
///
/// ```
/// use ndarray::array;
/// use xai_metrics::{iou_curve, top_percents};
/// let a = array![[0.0f32, 0.2, 0.4], [0.6, 0.8, 1.0]];
/// let curve = iou_curve(a.view(), a.view(), &top_percents(10))?;
/// assert!(curve.iter().all(|&v| v == 1.0));         // a map agrees with itself everywhere
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn iou_curve(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    rules: &[Binarize],
) -> Result<Vec<f32>> {
    same_shape("IoU curve", a.dim(), b.dim())?;
    rules
        .iter()
        .map(|r| iou(r.apply(a)?.view(), r.apply(b)?.view()))
        .collect()
}

/// `n` evenly spaced thresholds strictly inside `(0, 1)`: `1/(n+1), …, n/(n+1)` (for maps
/// scaled to `[0, 1]`).
pub fn thresholds(n: usize) -> Vec<Binarize> {
    (1..=n)
        .map(|i| Binarize::Threshold(i as f32 / (n + 1) as f32))
        .collect()
}

/// `n` top-percent rules `100/n, 2·100/n, …, 100` per cent of the pixels.
pub fn top_percents(n: usize) -> Vec<Binarize> {
    (1..=n)
        .map(|i| Binarize::TopPercent(100.0 * i as f32 / n as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn iou_and_dice_are_symmetric_and_bounded() {
        let a = Array2::from_shape_fn((5, 7), |(i, j)| (i * 3 + j) % 4 == 0);
        let b = Array2::from_shape_fn((5, 7), |(i, j)| (i + 2 * j) % 3 == 0);
        let (x, y) = (
            iou(a.view(), b.view()).unwrap(),
            iou(b.view(), a.view()).unwrap(),
        );
        assert_eq!(x, y);
        assert!((0.0..=1.0).contains(&x));
        let d = dice(a.view(), b.view()).unwrap();
        // Dice = 2 IoU / (1 + IoU)
        assert!((d - 2.0 * x / (1.0 + x)).abs() < 1e-6);
        assert_eq!(iou(a.view(), a.view()).unwrap(), 1.0);
    }

    #[test]
    fn shapes_must_agree() {
        let a = Array2::from_elem((2, 2), true);
        let b = Array2::from_elem((2, 3), true);
        let err = iou(a.view(), b.view()).unwrap_err().to_string();
        assert!(err.contains("[2, 3]"), "{err}");
    }

    #[test]
    fn ties_share_their_average_rank() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        let a = array![[1.0f32, 1.0]];
        assert!(spearman(a.view(), a.view()).unwrap().is_nan());
    }
}
