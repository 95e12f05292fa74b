//! The model-randomisation sanity check (Adebayo et al., NeurIPS 2018): an explanation that
//! depends on what the model learned must change when the model's weights are re-initialised,
//! top layers first ("cascading"). The change is reported as the Spearman rank correlation
//! between the original map and the map after each step; a faithful method's correlation
//! falls towards 0, an edge detector's stays high.

use ndarray::{Array2, ArrayView2};

use crate::{spearman, Error, Result};

/// One step of a cascading randomisation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SanityStep {
    /// The stages re-initialised so far, top first (`fc`, then `fc+layer4`, …).
    pub randomised: Vec<String>,
    /// Spearman rank correlation of the map with the original map.
    pub spearman: f64,
    /// The same on absolute values (for signed maps such as LIME's weights).
    pub spearman_abs: f64,
}

/// Runs the cascading check: for `k = 1..=stages.len()`, `map_after(&stages[..k])` must give
/// the map of the same input and target on the model whose first `k` stages are re-initialised
/// (the caller rebuilds the model; see `xai_models::WeightsFile::randomised`).
///
/// ```
/// use ndarray::Array2;
/// let original = Array2::from_shape_fn((8, 8), |(r, c)| (r * 8 + c) as f32);
/// // A "method" that ignores the model: its map never changes, so the check flags it.
/// let steps = xai_metrics::sanity::cascading_randomisation(
///     original.view(), &["fc", "layer4"], |_| Ok(original.clone()))?;
/// assert_eq!(steps.len(), 2);
/// assert!(steps.iter().all(|s| (s.spearman - 1.0).abs() < 1e-9));
/// assert_eq!(steps[1].randomised, vec!["fc", "layer4"]);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn cascading_randomisation<F>(
    original: ArrayView2<'_, f32>,
    stages: &[&str],
    mut map_after: F,
) -> Result<Vec<SanityStep>>
where
    F: FnMut(&[&str]) -> Result<Array2<f32>>,
{
    if stages.is_empty() {
        return Err(Error::param(
            "stages",
            "give at least one stage to re-initialise",
        ));
    }
    let original_abs = original.mapv(f32::abs);
    let mut out = Vec::with_capacity(stages.len());
    for k in 1..=stages.len() {
        let map = map_after(&stages[..k])?;
        out.push(SanityStep {
            randomised: stages[..k].iter().map(|s| s.to_string()).collect(),
            spearman: spearman(original, map.view())?,
            spearman_abs: spearman(original_abs.view(), map.mapv(f32::abs).view())?,
        });
    }
    Ok(out)
}
