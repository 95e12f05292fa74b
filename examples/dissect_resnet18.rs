//! Network dissection of two models and their comparison (the seed's Task 1), offline.
//!
//! ```text
//! cargo run --release --example dissect_resnet18
//! cargo run --release --example dissect_resnet18 -- --scenes 400 --similarity wpmi --out dissect_out
//! ```
//!
//! The seed labels the units of layer3, layer4 and fc of ResNet18-ImageNet and
//! ResNet18-Places365 with CLIP-Dissect and compares them. Offline, the two models are the test
//! world's miniature of that pair: `testworld-objects` (classifies the object) and
//! `testworld-scenes` (classifies the background), both torchvision ResNet-18s. The probe set is
//! seeded test-world scenes, the concept set the test world's 42 concepts, and the
//! concept-similarity matrix comes from the scenes' ground-truth concept masks (the stand-in
//! for CLIP's image–text similarities, see `xai_dissect::scorer::GroundTruthSimilarity`); the
//! labelling itself is CLIP-Dissect's (soft-WPMI by default).
//!
//! Writes, under `--out` (default `target/dissect_resnet18`): `probe/` (the scenes and their
//! concept masks), `testworld-objects/` and `testworld-scenes/` (descriptions.csv,
//! dissection.json, summary.json, charts, montages, report.md/html), and `compare/` (the
//! side-by-side comparison), and prints, per layer, which concepts dominate in each model and
//! the share of object-like and scene-like labels.
//!
//! Real ResNet18 ImageNet/Places365 weights need CLIP's towers for the similarity matrix,
//! which xai does not have yet; the example says so instead of guessing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use xai::dissect::dissect::{dissect, LabelConfig};
use xai::dissect::report::{self, summarize};
use xai::dissect::scorer::{testworld_concepts, ConceptSimilarity, GroundTruthSimilarity};
use xai::dissect::{activations, Pooling, Similarity};
use xai::models::candle_core::Device;

const MODELS: [&str; 2] = ["testworld-objects", "testworld-scenes"];
const LAYERS: [&str; 3] = ["layer3", "layer4", "fc"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = PathBuf::from("target/dissect_resnet18");
    let mut scenes = 200usize;
    let mut similarity = Similarity::from_name("soft-wpmi")?;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--out" => out = PathBuf::from(value),
            "--scenes" => scenes = value.parse().map_err(|_| "--scenes takes a count")?,
            "--similarity" => similarity = Similarity::from_name(&value)?,
            "--weights-a" | "--weights-b" | "--clip-weights" => {
                return Err(
                    "dissecting real weights needs CLIP's image and text towers for the \
                            concept similarities, which xai does not have yet; run the example \
                            without weights for the offline test-world version"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }

    println!(
        "probe set: {scenes} test-world scenes in {}",
        out.join("probe").display()
    );
    let probe = xai::dissect::probe::testworld_probe(&out.join("probe"), scenes, &mut |_| {})?;
    let kinds: BTreeMap<String, String> = testworld_concepts().into_iter().collect();
    let concepts: Vec<String> = kinds.keys().cloned().collect();
    let s = GroundTruthSimilarity::new(concepts.clone()).similarities(0, &probe.images)?;

    let dev = Device::Cpu;
    let layers: Vec<String> = LAYERS.iter().map(|l| l.to_string()).collect();
    let config = LabelConfig {
        similarity,
        ..LabelConfig::default()
    };
    let mut results = Vec::new();
    for name in MODELS {
        let model = xai::zoo::load(Some(name), None, &dev)?;
        let acts = activations::activations(
            &*model,
            &layers,
            &probe.images,
            Pooling::Avg,
            32,
            &mut |_| {},
        )?;
        let per_layer: Vec<(String, _)> = layers.iter().cloned().zip(acts).collect();
        let d = dissect(
            name,
            &per_layer,
            s.view(),
            &concepts,
            kinds.clone(),
            &probe.images,
            &config,
        )?;
        let files = report::write_outputs(&d, &out.join(name))?;
        println!(
            "{name}: {} units labelled, {} files in {}",
            d.labels.len(),
            files.len(),
            out.join(name).display()
        );
        results.push(d);
    }
    let files = report::compare(&results[0], &results[1], &out.join("compare"))?;
    println!(
        "comparison: {} files in {}\n",
        files.len(),
        out.join("compare").display()
    );

    println!("| layer | model | units | top concepts (units) | object-like | scene-like |");
    println!("|---|---|---|---|---|---|");
    for layer in LAYERS {
        for d in &results {
            let summary = summarize(d, 3);
            let Some(l) = summary.layers.iter().find(|l| l.layer == layer) else {
                continue;
            };
            let top: Vec<String> = l
                .top_concepts
                .iter()
                .map(|c| format!("{} ({})", c.concept, c.units))
                .collect();
            println!(
                "| {layer} | {} | {} | {} | {:.0} % | {:.0} % |",
                d.model,
                l.units,
                top.join(", "),
                100.0 * l.object_like_share,
                100.0 * l.scene_like_share
            );
        }
    }
    Ok(())
}
