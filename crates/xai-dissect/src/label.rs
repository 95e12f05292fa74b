//! What a dissection produces: one description per neuron, and the whole run.
//!
//! These types are the contract between the labelling stage (CLIP-Dissect or IoU) and
//! everything that reads its result (CSV/JSON writers, plots, montages, the model-vs-model
//! comparison), so that each side can be used alone: bring your own labels and plot them, or
//! label and post-process elsewhere.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A concept and its score for one neuron.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptScore {
    /// The concept, as written in the concept list.
    pub concept: String,
    /// The similarity (CLIP-Dissect) or IoU (Network Dissection) of this concept.
    pub score: f32,
}

/// A probe image that activates a neuron strongly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopImage {
    /// Row of the image in the probe set (its sorted file list).
    pub index: usize,
    /// Path of the image file.
    pub path: PathBuf,
    /// The neuron's pooled activation on this image.
    pub activation: f32,
}

/// The description of one neuron (unit) of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuronLabel {
    /// Layer name, as the backbone names it (`layer4`, `fc`).
    pub layer: String,
    /// Unit index within the layer, 0-based (channel for spatial layers).
    pub unit: usize,
    /// The best concept.
    pub concept: String,
    /// Its score (similarity, or IoU for the `iou` method).
    pub similarity: f32,
    /// The best concepts after it, best first (the best one excluded).
    pub top_k: Vec<ConceptScore>,
    /// The probe images that activate this unit most, largest first.
    pub top_images: Vec<TopImage>,
}

impl NeuronLabel {
    /// The label of `unit` from its concepts ranked best first (`order`, indices into
    /// `concepts`, scored by `score`): the first is the label, the next `top_concepts` the
    /// runners-up. `None` when there are no concepts.
    pub(crate) fn ranked(
        layer: &str,
        unit: usize,
        concepts: &[String],
        order: &[usize],
        score: impl Fn(usize) -> f32,
        top_concepts: usize,
        top_images: Vec<TopImage>,
    ) -> Option<Self> {
        let &best = order.first()?;
        Some(Self {
            layer: layer.to_string(),
            unit,
            concept: concepts[best].clone(),
            similarity: score(best),
            top_k: order
                .iter()
                .skip(1)
                .take(top_concepts)
                .map(|&c| ConceptScore {
                    concept: concepts[c].clone(),
                    score: score(c),
                })
                .collect(),
            top_images,
        })
    }
}

/// The result of dissecting one model: every labelled neuron of every layer, in layer order
/// then unit order, with what produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dissection {
    /// Name of the dissected model (`testworld-objects`, `resnet18`, a weights file stem).
    pub model: String,
    /// `clip` (CLIP-Dissect style) or `iou` (Network Dissection).
    pub method: String,
    /// The similarity function (`soft-wpmi`, `wpmi`, `cos`, `cos3`, `rank-reorder`), or
    /// `iou` for the IoU method.
    pub similarity: String,
    /// The layers dissected, in the order asked for.
    pub layers: Vec<String>,
    /// Number of probe images.
    pub probe_images: usize,
    /// One label per neuron.
    pub labels: Vec<NeuronLabel>,
    /// Optional kind of each concept (for example `object`, `part`, `colour`, `texture`,
    /// `scene`), used to report the share of object-like versus scene-like concepts.
    /// Concepts not listed have no kind.
    #[serde(default)]
    pub concept_kinds: BTreeMap<String, String>,
}
