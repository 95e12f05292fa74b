//! Localisation against ground truth: pointing game, energy-based pointing game, IoU with the
//! object mask.

use ndarray::{Array2, ArrayView2};

use crate::agreement::iou;
use crate::binarize::Binarize;
use crate::error::{check_finite, Error, Result};

fn check(map: ArrayView2<'_, f32>, mask: ArrayView2<'_, bool>) -> Result<()> {
    if map.dim() != mask.dim() {
        return Err(Error::shape(
            "ground-truth mask",
            &[mask.dim().0, mask.dim().1],
            format!("{:?}, the map's shape (resize the map first)", map.dim()),
        ));
    }
    check_finite("map", map.iter())
}

/// The position `(row, col)` of the map's maximum (the first one in row-major order on ties).
pub fn argmax(map: ArrayView2<'_, f32>) -> (usize, usize) {
    let mut best = ((0, 0), f32::NEG_INFINITY);
    for ((r, c), &v) in map.indexed_iter() {
        if v > best.1 {
            best = ((r, c), v);
        }
    }
    best.0
}

/// Pointing game (Zhang et al., 2016): a hit when the map's maximum lies within `tolerance`
/// pixels (Euclidean) of the ground-truth mask; the paper uses 15 px. Tolerance 0 asks the
/// maximum to be on the mask itself.
///
/// ```
/// use ndarray::{array, Array2};
/// let mut map = Array2::<f32>::zeros((8, 8));
/// map[[0, 0]] = 1.0;
/// let mask = Array2::from_shape_fn((8, 8), |(r, c)| r >= 3 && c >= 3);
/// assert!(!xai_metrics::pointing_game(map.view(), mask.view(), 0.0)?);
/// assert!(xai_metrics::pointing_game(map.view(), mask.view(), 5.0)?); // √18 ≈ 4.2 px away
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn pointing_game(
    map: ArrayView2<'_, f32>,
    mask: ArrayView2<'_, bool>,
    tolerance: f32,
) -> Result<bool> {
    check(map, mask)?;
    if tolerance.is_nan() || tolerance < 0.0 {
        return Err(Error::param(
            "tolerance",
            "give a distance in pixels, 0 or more",
        ));
    }
    let (r0, c0) = argmax(map);
    let t2 = tolerance as f64 * tolerance as f64;
    Ok(mask.indexed_iter().any(|((r, c), &m)| {
        let (dr, dc) = (r as f64 - r0 as f64, c as f64 - c0 as f64);
        m && dr * dr + dc * dc <= t2
    }))
}

/// The share of the map's positive mass that falls inside the mask, in `[0, 1]` (0 for a map
/// with no positive value).
///
/// ```
/// use ndarray::array;
/// let map = array![[1.0f32, 3.0], [0.0, -2.0]];
/// let mask = array![[false, true], [false, true]];
/// assert_eq!(xai_metrics::energy_in_mask(map.view(), mask.view())?, 0.75);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn energy_in_mask(map: ArrayView2<'_, f32>, mask: ArrayView2<'_, bool>) -> Result<f32> {
    check(map, mask)?;
    let (mut inside, mut total) = (0f64, 0f64);
    for (&v, &m) in map.iter().zip(mask.iter()) {
        let v = v.max(0.0) as f64;
        total += v;
        if m {
            inside += v;
        }
    }
    Ok(if total > 0.0 {
        (inside / total) as f32
    } else {
        0.0
    })
}

/// Energy-based pointing game (Wang et al., Score-CAM, 2020): the map min-max scaled to
/// `[0, 1]`, then the share of its mass inside the mask (box or mask of the object).
///
/// ```
/// use ndarray::array;
/// let map = array![[1.0f32, 3.0], [1.0, 2.0]];          // scaled: [[0, 1], [0, 0.5]]
/// let mask = array![[false, true], [false, false]];
/// assert!((xai_metrics::energy_pointing_game(map.view(), mask.view())? - 2.0 / 3.0).abs() < 1e-6);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn energy_pointing_game(map: ArrayView2<'_, f32>, mask: ArrayView2<'_, bool>) -> Result<f32> {
    check(map, mask)?;
    let min = map.iter().copied().fold(f32::INFINITY, f32::min);
    let max = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max <= min {
        return Ok(0.0);
    }
    let scaled: Array2<f32> = map.mapv(|v| (v - min) / (max - min));
    energy_in_mask(scaled.view(), mask)
}

/// IoU of the map binarised with `rule` against the ground-truth mask.
pub fn mask_iou(
    map: ArrayView2<'_, f32>,
    mask: ArrayView2<'_, bool>,
    rule: &Binarize,
) -> Result<f32> {
    check(map, mask)?;
    iou(rule.apply(map)?.view(), mask)
}

/// The three localisation scores of one map, as the test world's benchmark reports them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LocalisationScores {
    /// 1 if the map's maximum is inside the mask (no tolerance), else 0.
    pub pointing: f32,
    /// Share of the positive map mass inside the mask ([`energy_in_mask`]), in `[0, 1]`.
    pub energy: f32,
    /// IoU with the mask of the map's top pixels, as many as the mask has
    /// ([`Binarize::TopCount`]), so no threshold is chosen by hand.
    pub iou: f32,
}

/// Scores `map` against `mask` (same shape): pointing game without tolerance, energy in the
/// mask, area-matched IoU.
///
/// ```
/// use ndarray::Array2;
/// let mask = Array2::from_shape_fn((6, 6), |(r, c)| r < 3 && c < 3);
/// let map = Array2::from_shape_fn((6, 6), |(r, c)| 1.0 / (1.0 + (r + c) as f32));
/// let s = xai_metrics::score_map(map.view(), mask.view())?;
/// assert_eq!(s.pointing, 1.0);
/// assert!(s.iou > 0.5 && s.energy > 0.4);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn score_map(
    map: ArrayView2<'_, f32>,
    mask: ArrayView2<'_, bool>,
) -> Result<LocalisationScores> {
    check(map, mask)?;
    let area = mask.iter().filter(|&&m| m).count();
    let iou = if area == 0 {
        0.0
    } else {
        mask_iou(map, mask, &Binarize::TopCount(area))?
    };
    Ok(LocalisationScores {
        pointing: if pointing_game(map, mask, 0.0)? {
            1.0
        } else {
            0.0
        },
        energy: energy_in_mask(map, mask)?,
        iou,
    })
}
