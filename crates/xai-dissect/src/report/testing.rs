//! Dissections for the tests, with the test world's concept names and kinds.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::label::{ConceptScore, Dissection, NeuronLabel, TopImage};

/// The test world's vocabulary (`xai_testworld::all_concepts`), as name and kind.
pub(crate) const TESTWORLD: [(&str, &str); 42] = [
    ("beige", "colour"),
    ("black", "colour"),
    ("blue", "colour"),
    ("brown", "colour"),
    ("green", "colour"),
    ("grey", "colour"),
    ("light-blue", "colour"),
    ("orange", "colour"),
    ("pink", "colour"),
    ("purple", "colour"),
    ("red", "colour"),
    ("white", "colour"),
    ("yellow", "colour"),
    ("body", "part"),
    ("cap", "part"),
    ("centre", "part"),
    ("chimney", "part"),
    ("door", "part"),
    ("eye", "part"),
    ("fin", "part"),
    ("petal", "part"),
    ("roof", "part"),
    ("stem", "part"),
    ("tail", "part"),
    ("vein", "part"),
    ("wall", "part"),
    ("wheel", "part"),
    ("window", "part"),
    ("blades", "texture"),
    ("bricks", "texture"),
    ("clouds", "texture"),
    ("dots", "texture"),
    ("flakes", "texture"),
    ("ripples", "texture"),
    ("stripes", "texture"),
    ("waves", "texture"),
    ("brick", "scene"),
    ("grass", "scene"),
    ("sand", "scene"),
    ("sky", "scene"),
    ("snow", "scene"),
    ("water", "scene"),
];

fn kinds() -> BTreeMap<String, String> {
    TESTWORLD
        .iter()
        .map(|(c, k)| (c.to_string(), k.to_string()))
        .collect()
}

/// A dissection with the given labels per layer (no top-k, no top images).
pub(crate) fn dissection(model: &str, layers: &[(&str, &[(&str, f32)])]) -> Dissection {
    let mut labels = vec![];
    for (layer, units) in layers {
        for (unit, (concept, sim)) in units.iter().enumerate() {
            labels.push(NeuronLabel {
                layer: layer.to_string(),
                unit,
                concept: concept.to_string(),
                similarity: *sim,
                top_k: vec![],
                top_images: vec![],
            });
        }
    }
    Dissection {
        model: model.into(),
        method: "clip".into(),
        similarity: "soft-wpmi".into(),
        layers: layers.iter().map(|(l, _)| l.to_string()).collect(),
        probe_images: 100,
        labels,
        concept_kinds: kinds(),
    }
}

/// A deterministic, realistic-looking dissection of layer3 (24 units), layer4 (48) and fc (6):
/// the `objects` model leans to parts and colours, any other model to scene kinds and
/// textures. Top images point to files that do not exist.
pub(crate) fn testworld_dissection(model: &str, seed: u64) -> Dissection {
    let objects = model.contains("object");
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut labels = vec![];
    for (layer, units) in [("layer3", 24), ("layer4", 48), ("fc", 6)] {
        for unit in 0..units {
            // Skew the choice towards the model's favoured kinds, more so in deeper layers.
            let favoured = if objects { 13..28 } else { 28..42 };
            let idx = if next() % 10 < if layer == "layer3" { 5 } else { 8 } {
                favoured.start + (next() % (favoured.len() * favoured.len())).isqrt()
            } else {
                next() % TESTWORLD.len()
            };
            let sim = 0.1 + (next() % 1000) as f32 / 2000.0;
            let top_k = (1..=4)
                .map(|k| ConceptScore {
                    concept: TESTWORLD[(idx + 7 * k) % TESTWORLD.len()].0.into(),
                    score: sim - 0.02 * k as f32,
                })
                .collect();
            let top_images = (0..6)
                .map(|r| {
                    let index = next() % 100;
                    TopImage {
                        index,
                        path: PathBuf::from(format!("/nonexistent/probe/scene_{index:04}.png")),
                        activation: 5.0 - r as f32 * 0.5,
                    }
                })
                .collect();
            labels.push(NeuronLabel {
                layer: layer.into(),
                unit,
                concept: TESTWORLD[idx].0.into(),
                similarity: sim,
                top_k,
                top_images,
            });
        }
    }
    Dissection {
        model: model.into(),
        method: "clip".into(),
        similarity: "soft-wpmi".into(),
        layers: vec!["layer3".into(), "layer4".into(), "fc".into()],
        probe_images: 100,
        labels,
        concept_kinds: kinds(),
    }
}
