//! From `S` and each layer's `A` to labels: CLIP-Dissect's labelling stage.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ndarray::ArrayView2;

use crate::similarity::{top_images, Similarity};
use crate::{Dissection, Error, NeuronLabel, Result, TopImage};

/// Settings of the labelling stage.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelConfig {
    /// The similarity function.
    pub similarity: Similarity,
    /// Runner-up concepts kept per unit (after the best one; default 5).
    pub top_concepts: usize,
    /// Most activating probe images kept per unit (default 5, as the reference's notebook).
    pub top_images: usize,
}

impl Default for LabelConfig {
    fn default() -> Self {
        Self {
            similarity: Similarity::default(),
            top_concepts: 5,
            top_images: 5,
        }
    }
}

/// Labels every unit of one layer: the argmax concept of its score row (the first one among
/// equal scores; NaN scores never win unless all are NaN), its score, the next
/// `top_concepts` and its `top_images` most activating images.
pub fn label_layer(
    layer: &str,
    s: ArrayView2<'_, f32>,
    a: ArrayView2<'_, f32>,
    concepts: &[String],
    images: &[PathBuf],
    config: &LabelConfig,
) -> Result<Vec<NeuronLabel>> {
    if concepts.len() != s.ncols() {
        return Err(Error::Shape {
            what: "the concept similarities".into(),
            actual: s.shape().to_vec(),
            expected: format!("one column per concept ({})", concepts.len()),
        });
    }
    let scores = config.similarity.compute(s, a)?;
    let tops = top_images(a, config.top_images);
    let mut out = Vec::with_capacity(a.ncols());
    for (unit, row) in scores.outer_iter().enumerate() {
        let mut order: Vec<usize> = (0..row.len()).collect();
        // Descending, NaN last, ties by concept index.
        order.sort_by(|&x, &y| {
            let (vx, vy) = (row[x], row[y]);
            match (vx.is_nan(), vy.is_nan()) {
                (true, true) => x.cmp(&y),
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => vy.total_cmp(&vx).then(x.cmp(&y)),
            }
        });
        let top = tops[unit]
            .iter()
            .map(|&i| TopImage {
                index: i,
                path: images.get(i).cloned().unwrap_or_default(),
                activation: a[[i, unit]],
            })
            .collect();
        out.extend(NeuronLabel::ranked(
            layer,
            unit,
            concepts,
            &order,
            |c| row[c],
            config.top_concepts,
            top,
        ));
    }
    Ok(out)
}

/// Labels every layer and gathers the result.
#[allow(clippy::too_many_arguments)]
pub fn dissect(
    model: &str,
    layers: &[(String, ndarray::Array2<f32>)],
    s: ArrayView2<'_, f32>,
    concepts: &[String],
    concept_kinds: BTreeMap<String, String>,
    images: &[PathBuf],
    config: &LabelConfig,
) -> Result<Dissection> {
    let mut labels = Vec::new();
    for (name, a) in layers {
        labels.extend(label_layer(name, s, a.view(), concepts, images, config)?);
    }
    Ok(Dissection {
        model: model.to_string(),
        method: "clip".into(),
        similarity: config.similarity.name().into(),
        layers: layers.iter().map(|(n, _)| n.clone()).collect(),
        probe_images: s.nrows(),
        labels,
        concept_kinds,
    })
}
