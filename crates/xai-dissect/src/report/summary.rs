//! Per-layer numbers of one dissection: what `summary.json` holds and the charts draw.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::label::{Dissection, NeuronLabel};

/// The kind recorded for concepts that [`Dissection::concept_kinds`] does not list.
pub const NO_KIND: &str = "unknown";

/// How a concept kind counts in the object-like versus scene-like share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindGroup {
    /// `object`, `part` (and their plurals): things on or of an object.
    ObjectLike,
    /// `scene`, `place`, `background` (and plurals): the setting.
    SceneLike,
    /// Everything else (`colour`, `texture`, `material`, unknown kinds): neither.
    Other,
}

/// The group of a concept kind (ASCII case ignored): see [`KindGroup`].
///
/// ```
/// use xai_dissect::report::{kind_group, KindGroup};
/// assert_eq!(kind_group("part"), KindGroup::ObjectLike);
/// assert_eq!(kind_group("Scene"), KindGroup::SceneLike);
/// assert_eq!(kind_group("colour"), KindGroup::Other);
/// ```
pub fn kind_group(kind: &str) -> KindGroup {
    let k = kind.to_ascii_lowercase();
    let k = k.strip_suffix('s').unwrap_or(&k);
    match k {
        "object" | "part" => KindGroup::ObjectLike,
        "scene" | "place" | "background" => KindGroup::SceneLike,
        _ => KindGroup::Other,
    }
}

/// How many units of a layer a concept labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptCount {
    /// The concept.
    pub concept: String,
    /// Its kind, [`NO_KIND`] when the dissection does not give one.
    pub kind: String,
    /// Units whose best concept it is.
    pub units: usize,
    /// `units` over the layer's units.
    pub share: f64,
}

/// The summary of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSummary {
    /// Layer name.
    pub layer: String,
    /// Labelled units.
    pub units: usize,
    /// Distinct best concepts among them.
    pub distinct_concepts: usize,
    /// Mean of the best concepts' scores; `None` for a layer without units.
    pub mean_similarity: Option<f64>,
    /// The most frequent best concepts, most frequent first (ties by name), at most the
    /// configured number.
    pub top_concepts: Vec<ConceptCount>,
    /// Share of the layer's units per concept kind (summing to 1 when there are units).
    pub kind_shares: BTreeMap<String, f64>,
    /// Share of units labelled with an object-like kind ([`KindGroup::ObjectLike`]).
    pub object_like_share: f64,
    /// Share of units labelled with a scene-like kind ([`KindGroup::SceneLike`]).
    pub scene_like_share: f64,
}

/// What `summary.json` holds: the run's description and one [`LayerSummary`] per layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`Dissection::model`].
    pub model: String,
    /// [`Dissection::method`].
    pub method: String,
    /// [`Dissection::similarity`].
    pub similarity: String,
    /// [`Dissection::probe_images`].
    pub probe_images: usize,
    /// Per layer, in [`layer_order`].
    pub layers: Vec<LayerSummary>,
}

/// The layers of a dissection: [`Dissection::layers`] first, then any layer that only the
/// labels name, in order of first appearance (so that no label goes unreported).
pub fn layer_order(d: &Dissection) -> Vec<String> {
    let mut out = d.layers.clone();
    let mut seen: BTreeSet<&str> = d.layers.iter().map(String::as_str).collect();
    for l in &d.labels {
        if seen.insert(l.layer.as_str()) {
            out.push(l.layer.clone());
        }
    }
    out
}

/// The labels of `layer`, in the dissection's order.
pub(crate) fn layer_labels<'a>(d: &'a Dissection, layer: &str) -> Vec<&'a NeuronLabel> {
    d.labels.iter().filter(|l| l.layer == layer).collect()
}

/// The kind of `concept` in `d`, [`NO_KIND`] if unknown.
pub(crate) fn kind_of<'a>(d: &'a Dissection, concept: &str) -> &'a str {
    d.concept_kinds
        .get(concept)
        .map(String::as_str)
        .unwrap_or(NO_KIND)
}

/// Every best concept of `layer` with its count, most frequent first, ties by name.
pub fn concept_counts(d: &Dissection, layer: &str) -> Vec<ConceptCount> {
    let labels = layer_labels(d, layer);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &labels {
        *counts.entry(l.concept.as_str()).or_default() += 1;
    }
    let n = labels.len().max(1) as f64;
    let mut out: Vec<ConceptCount> = counts
        .into_iter()
        .map(|(c, units)| ConceptCount {
            concept: c.to_string(),
            kind: kind_of(d, c).to_string(),
            units,
            share: units as f64 / n,
        })
        .collect();
    // Stable sort: the BTreeMap already ordered ties by name.
    out.sort_by_key(|c| std::cmp::Reverse(c.units));
    out
}

/// The summary of one layer, keeping its `top_n` most frequent concepts.
pub fn summarize_layer(d: &Dissection, layer: &str, top_n: usize) -> LayerSummary {
    let labels = layer_labels(d, layer);
    let counts = concept_counts(d, layer);
    let units = labels.len();
    let mut kind_shares: BTreeMap<String, f64> = BTreeMap::new();
    let (mut object, mut scene) = (0usize, 0usize);
    for c in &counts {
        *kind_shares.entry(c.kind.clone()).or_default() += c.units as f64;
        match kind_group(&c.kind) {
            KindGroup::ObjectLike => object += c.units,
            KindGroup::SceneLike => scene += c.units,
            KindGroup::Other => {}
        }
    }
    let n = units.max(1) as f64;
    for v in kind_shares.values_mut() {
        *v /= n;
    }
    let mean_similarity = (units > 0)
        .then(|| labels.iter().map(|l| f64::from(l.similarity)).sum::<f64>() / units as f64);
    LayerSummary {
        layer: layer.to_string(),
        units,
        distinct_concepts: counts.len(),
        mean_similarity,
        top_concepts: counts.into_iter().take(top_n).collect(),
        kind_shares,
        object_like_share: object as f64 / n,
        scene_like_share: scene as f64 / n,
    }
}

/// The summary of a whole dissection, keeping `top_n` concepts per layer.
pub fn summarize(d: &Dissection, top_n: usize) -> Summary {
    Summary {
        model: d.model.clone(),
        method: d.method.clone(),
        similarity: d.similarity.clone(),
        probe_images: d.probe_images,
        layers: layer_order(d)
            .iter()
            .map(|l| summarize_layer(d, l, top_n))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::dissection;

    #[test]
    fn counts_shares_and_means_follow_the_labels() {
        // layer4: fin ×3 (part), water ×2 (scene), red ×1 (colour).
        let d = dissection(
            "m",
            &[(
                "layer4",
                &[
                    ("fin", 0.5),
                    ("water", 0.25),
                    ("fin", 0.25),
                    ("red", 0.75),
                    ("fin", 0.5),
                    ("water", 0.75),
                ],
            )],
        );
        let s = summarize(&d, 2);
        let l = &s.layers[0];
        assert_eq!((l.units, l.distinct_concepts), (6, 3));
        assert_eq!(l.mean_similarity, Some(0.5));
        let top: Vec<_> = l
            .top_concepts
            .iter()
            .map(|c| (c.concept.as_str(), c.units))
            .collect();
        assert_eq!(top, [("fin", 3), ("water", 2)]);
        assert!((l.top_concepts[0].share - 0.5).abs() < 1e-12);
        assert!((l.object_like_share - 0.5).abs() < 1e-12);
        assert!((l.scene_like_share - 2.0 / 6.0).abs() < 1e-12);
        assert!((l.kind_shares.values().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((l.kind_shares["colour"] - 1.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn ties_are_broken_by_name_and_unknown_kinds_are_named() {
        let d = dissection("m", &[("fc", &[("zebra-ish", 0.1), ("alpha", 0.2)])]);
        let c = concept_counts(&d, "fc");
        assert_eq!(c[0].concept, "alpha");
        assert_eq!(c[1].kind, NO_KIND);
    }

    #[test]
    fn empty_layers_and_layers_only_the_labels_name_are_reported() {
        let mut d = dissection("m", &[("layer3", &[("fin", 0.1)])]);
        d.layers = vec!["layer2".into()];
        assert_eq!(layer_order(&d), ["layer2", "layer3"]);
        let s = summarize(&d, 5);
        assert_eq!(s.layers[0].units, 0);
        assert_eq!(s.layers[0].mean_similarity, None);
        assert_eq!(s.layers[0].object_like_share, 0.0);
        assert_eq!(s.layers[1].units, 1);
    }
}
