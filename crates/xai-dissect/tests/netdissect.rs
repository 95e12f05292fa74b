//! The IoU method on a toy backbone whose units are known detectors: unit 0 is the input's red
//! channel, unit 1 its green channel, unit 2 a constant; probe images are half red, half green
//! (at varying splits), with the matching concept masks.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use xai_dissect::netdissect::{iou_dissect, IouConfig};
use xai_dissect::scorer::GroundTruthSimilarity;
use xai_models::{Backbone, InputSpec, Labels, LayerInfo};

struct Channels {
    layers: Vec<LayerInfo>,
    spec: InputSpec,
    labels: Labels,
}

impl Backbone for Channels {
    fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }
    fn input_spec(&self) -> &InputSpec {
        &self.spec
    }
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn device(&self) -> &Device {
        &Device::Cpu
    }
    fn forward_to(&self, x: &Tensor, layer: &str) -> xai_models::Result<Tensor> {
        // Two colour channels, each pooled 2×2 (so maps are coarser than masks), and a constant.
        let colours = x.narrow(1, 0, 2)?.avg_pool2d(2)?;
        let constant = colours.narrow(1, 0, 1)?.zeros_like()?;
        let maps = Tensor::cat(&[colours, constant], 1)?;
        match self.layer_index(layer)? {
            0 => Ok(maps),
            _ => self.forward_from(&maps, "maps"),
        }
    }
    fn forward_from(&self, a: &Tensor, layer: &str) -> xai_models::Result<Tensor> {
        match self.layer_index(layer)? {
            0 => Ok(a.mean((2, 3))?),
            _ => Ok(a.clone()),
        }
    }
}

fn write_probe(root: &Path, n: usize) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for i in 0..n {
        let split = 4 + (i % 8) as u32; // red columns 0..split, green after
                                        // Varying intensities, so that the top quantile is a region, not a plateau.
        let img = image::RgbImage::from_fn(16, 16, |x, y| {
            let v = 120 + ((x * 7 + y * 13 + i as u32 * 5) % 120) as u8;
            if x < split {
                image::Rgb([v, 0, 0])
            } else {
                image::Rgb([0, v, 0])
            }
        });
        let name = format!("p{i:03}");
        let images = root.join("images");
        std::fs::create_dir_all(&images).unwrap();
        let path = images.join(format!("{name}.png"));
        img.save(&path).unwrap();
        let masks = root.join("concepts").join(&name);
        std::fs::create_dir_all(&masks).unwrap();
        for (concept, red) in [("red", true), ("green", false)] {
            let m = image::GrayImage::from_fn(16, 16, |x, _| {
                image::Luma([if (x < split) == red { 255 } else { 0 }])
            });
            m.save(masks.join(format!("{concept}.png"))).unwrap();
        }
        paths.push(path);
    }
    paths
}

#[test]
fn known_detectors_get_their_concepts_and_a_constant_unit_gets_none() {
    let dir = tempfile::tempdir().unwrap();
    let images = write_probe(dir.path(), 24);
    let model = Channels {
        layers: vec![LayerInfo::spatial("maps", 3), LayerInfo::vector("fc", 3)],
        spec: InputSpec::imagenet_at(16),
        labels: Labels::numbered(3),
    };
    let concepts = vec!["red".to_string(), "green".to_string()];
    let kinds: BTreeMap<String, String> = concepts
        .iter()
        .map(|c| (c.clone(), "colour".to_string()))
        .collect();
    let scorer = GroundTruthSimilarity::new(concepts.clone());
    let config = IouConfig {
        quantile: 0.3, // a region of about 30 % of the pixels: inside the red or green part
        ..IouConfig::default()
    };
    let mut calls = 0;
    let d = iou_dissect(
        &model,
        "toy",
        &["maps".to_string()],
        &images,
        &concepts,
        &kinds,
        &scorer,
        &config,
        &mut |_, _| calls += 1,
    )
    .unwrap();
    assert!(calls >= 24, "progress is reported");
    assert_eq!((d.method.as_str(), d.probe_images), ("iou", 24));
    let label = |u: usize| d.labels.iter().find(|l| l.unit == u);
    let red = label(0).unwrap();
    let green = label(1).unwrap();
    assert_eq!(red.concept, "red");
    assert_eq!(green.concept, "green");
    // The regions lie inside their colour: IoU well above the 0.04 detector threshold.
    assert!(
        red.similarity > 0.3 && green.similarity > 0.3,
        "{red:?} {green:?}"
    );
    assert!(red.top_k[0].score < red.similarity);
    assert_eq!(red.top_images.len(), 10);
    assert!(
        label(2).is_none(),
        "a constant unit has no region and is no detector"
    );
}

#[test]
fn vector_layers_and_empty_probes_are_refused_with_a_reason() {
    let model = Channels {
        layers: vec![LayerInfo::spatial("maps", 3), LayerInfo::vector("fc", 3)],
        spec: InputSpec::imagenet_at(16),
        labels: Labels::numbered(3),
    };
    let scorer = GroundTruthSimilarity::new(vec!["red".into()]);
    let dir = tempfile::tempdir().unwrap();
    let images = write_probe(dir.path(), 2);
    let err = iou_dissect(
        &model,
        "toy",
        &["fc".to_string()],
        &images,
        &["red".to_string()],
        &BTreeMap::new(),
        &scorer,
        &IouConfig::default(),
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("spatial"), "{err}");
    let err = iou_dissect(
        &model,
        "toy",
        &["maps".to_string()],
        &[],
        &["red".to_string()],
        &BTreeMap::new(),
        &scorer,
        &IouConfig::default(),
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no images"), "{err}");
}
