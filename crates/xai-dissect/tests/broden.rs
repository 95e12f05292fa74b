//! A Broden-style export of test-world scenes dissects exactly like the scenes themselves.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use candle_core::Device;
use xai_dissect::broden::{export_testworld, BrodenProbe};
use xai_dissect::netdissect::{iou_dissect, ConceptMasks, IouConfig};
use xai_dissect::probe::testworld_probe;
use xai_dissect::scorer::{testworld_concepts, GroundTruthSimilarity};
use xai_testworld::Task;

#[test]
fn the_broden_export_of_the_test_world_gives_the_same_iou_dissection() {
    let dir = tempfile::tempdir().unwrap();
    let native = testworld_probe(&dir.path().join("tw"), 24, &mut |_| {}).unwrap();
    let broden = export_testworld(&native.images, &dir.path().join("broden")).unwrap();
    let reopened = BrodenProbe::open(&dir.path().join("broden")).unwrap();

    let (concepts, kinds): (Vec<String>, Vec<String>) = testworld_concepts().into_iter().unzip();
    let kinds: BTreeMap<String, String> = concepts.iter().cloned().zip(kinds).collect();
    assert_eq!(reopened.concepts(), concepts.as_slice());
    assert_eq!(
        reopened.kinds(),
        kinds,
        "primary categories are the concept kinds"
    );
    assert_eq!(reopened.images().len(), native.images.len());

    let truth = GroundTruthSimilarity::new(concepts.clone());
    for (a, b) in native.images.iter().zip(reopened.images()) {
        assert_eq!(
            truth.masks(a).unwrap(),
            reopened.masks(b).unwrap(),
            "masks of {}",
            a.display()
        );
    }

    let model = xai_testworld::pretrained::model_on(Task::Objects, &Device::Cpu).unwrap();
    let layers = vec!["layer3".to_string(), "layer4".to_string()];
    let config = IouConfig::default();
    let run = |images: &[std::path::PathBuf], masks: &dyn ConceptMasks| {
        iou_dissect(
            &model,
            "testworld-objects",
            &layers,
            images,
            &concepts,
            &kinds,
            masks,
            &config,
            &mut |_, _| {},
        )
        .unwrap()
    };
    let a = run(&native.images, &truth);
    let b = run(broden.images(), &broden);
    assert!(!a.labels.is_empty(), "some units are detectors");
    assert_eq!(a.labels.len(), b.labels.len());
    for (x, y) in a.labels.iter().zip(&b.labels) {
        assert_eq!(
            (&x.layer, x.unit, &x.concept, x.similarity, &x.top_k),
            (&y.layer, y.unit, &y.concept, y.similarity, &y.top_k)
        );
        let index = |l: &xai_dissect::NeuronLabel| -> Vec<_> {
            l.top_images
                .iter()
                .map(|t| (t.index, t.activation))
                .collect()
        };
        assert_eq!(index(x), index(y));
    }
    assert_eq!(a.concept_kinds, b.concept_kinds);
}
