//! Numerical parity with torchvision on seeded random weights.
//!
//! Fixtures: `tools/parity/make_fixtures.py` (torchvision's ResNet code, stem width 4, random
//! batch-norm statistics), inputs `testdata/parity/input_64.npy`, reference outputs
//! `testdata/parity/<model>.<layer>.npy`. Tolerance: 1e-4 of the reference's largest magnitude.

#![allow(clippy::unwrap_used)]

use candle_core::{Device, Tensor};
use xai_models::{Backbone, ResNet, ResNetConfig, Target, WeightsFile};

mod common;
use common::Fixtures;

const FIXTURES: Fixtures = Fixtures("");

fn assert_close(name: &str, ours: &Tensor, reference: &Tensor) {
    assert_eq!(ours.dims(), reference.dims(), "{name}: shape");
    let scale = reference
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .max(1e-6);
    let diff = (ours - reference)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        diff <= 1e-4 * scale,
        "{name}: max abs diff {diff:e} exceeds 1e-4 of scale {scale:e}"
    );
}

const LAYERS: [&str; 8] = [
    "maxpool", "layer1", "layer2.0", "layer3", "layer4.1", "layer4", "avgpool", "logits",
];

fn check_model(model: &ResNet, prefix: &str) {
    let x = FIXTURES.f32("parity/input_64.npy");
    for layer in LAYERS {
        let reference = FIXTURES.f32(&format!("parity/{prefix}.{layer}.npy"));
        let name = if layer == "logits" { "fc" } else { layer };
        let ours = model.forward_to(&x, name).unwrap();
        assert_close(&format!("{prefix} {layer}"), &ours, &reference);
    }
    // forward_from a middle layer reproduces the logits without re-running the layers before it.
    let logits = FIXTURES.f32(&format!("parity/{prefix}.logits.npy"));
    for layer in ["layer3", "layer4", "layer4.1", "avgpool", "fc"] {
        let act = model.forward_to(&x, layer).unwrap();
        assert_close(
            &format!("{prefix} from {layer}"),
            &model.forward_from(&act, layer).unwrap(),
            &logits,
        );
    }
    let many = model
        .forward_to_many(&x, &["layer4", "layer2.0", "fc"])
        .unwrap();
    assert_close(&format!("{prefix} many"), &many[2], &logits);
    assert_close(
        &format!("{prefix} many l4"),
        &many[0],
        &FIXTURES.f32(&format!("parity/{prefix}.layer4.npy")),
    );
}

#[test]
fn resnet18_safetensors_matches_torchvision() {
    let model = ResNet::load(
        FIXTURES.path("parity/resnet18_tiny.safetensors"),
        "resnet18",
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(model.config().num_classes, 10);
    assert_eq!(model.config().width, 4);
    check_model(&model, "resnet18_tiny");
}

#[test]
fn resnet18_pth_zip_matches_torchvision() {
    let model = ResNet::load(
        FIXTURES.path("parity/resnet18_tiny.pth"),
        "resnet18",
        &Device::Cpu,
    )
    .unwrap();
    check_model(&model, "resnet18_tiny");
}

#[test]
fn places365_legacy_checkpoint_loads_and_matches() {
    let model = ResNet::load(
        FIXTURES.path("parity/resnet18_tiny_places.pth.tar"),
        "resnet18",
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        model.config().num_classes,
        365,
        "classes are read from fc.weight"
    );
    check_model(&model, "resnet18_tiny_places");
}

#[test]
fn resnet50_matches_torchvision() {
    let model = ResNet::load(
        FIXTURES.path("parity/resnet50_tiny.safetensors"),
        "resnet50",
        &Device::Cpu,
    )
    .unwrap();
    check_model(&model, "resnet50_tiny");
}

#[test]
fn layer_names_follow_torchvision() {
    let model = ResNet::load(
        FIXTURES.path("parity/resnet50_tiny.safetensors"),
        "resnet50",
        &Device::Cpu,
    )
    .unwrap();
    let names: Vec<&str> = model.layers().iter().map(|l| l.name.as_str()).collect();
    for expected in [
        "maxpool", "layer1.0", "layer1.2", "layer1", "layer3.5", "layer4.2", "layer4", "avgpool",
        "fc",
    ] {
        assert!(names.contains(&expected), "missing {expected} in {names:?}");
    }
    assert_eq!(model.default_cam_layer().unwrap().name, "layer4");
    assert_eq!(model.layer("layer4").unwrap().channels, 128);
}

#[test]
fn wrong_architecture_names_the_tensors_and_guesses_the_right_one() {
    let err = ResNet::load(
        FIXTURES.path("parity/resnet18_tiny.safetensors"),
        "resnet50",
        &Device::Cpu,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("resnet50"), "{msg}");
    assert!(msg.contains("layer1.0.conv3.weight"), "{msg}");
    assert!(msg.contains("looks like resnet18"), "{msg}");

    let err = ResNet::load(
        FIXTURES.path("parity/resnet18_tiny.safetensors"),
        "resnet34",
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing tensor"), "{err}");
}

#[test]
fn unexpected_and_misshaped_tensors_are_named() {
    let dev = Device::Cpu;
    let file = WeightsFile::open(FIXTURES.path("parity/resnet18_tiny.safetensors"), &dev).unwrap();
    let mut tensors: std::collections::HashMap<String, Tensor> = file
        .names()
        .iter()
        .map(|n| (n.to_string(), file.get(n).unwrap().clone()))
        .collect();
    tensors.insert(
        "head.extra.weight".into(),
        Tensor::zeros(3, candle_core::DType::F32, &dev).unwrap(),
    );
    let err = ResNet::from_weights(
        &WeightsFile::from_tensors("x.safetensors", tensors.clone()),
        ResNetConfig::resnet18(),
        &dev,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("unexpected tensor(s) `head.extra.weight`"),
        "{err}"
    );

    tensors.remove("head.extra.weight");
    tensors.insert(
        "layer2.0.conv2.weight".into(),
        Tensor::zeros((8, 8, 5, 5), candle_core::DType::F32, &dev).unwrap(),
    );
    let err = ResNet::from_weights(
        &WeightsFile::from_tensors("x.safetensors", tensors),
        ResNetConfig::resnet18(),
        &dev,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("layer2.0.conv2.weight") && msg.contains("[8, 8, 5, 5]"),
        "{msg}"
    );
}

#[test]
fn unknown_layer_lists_valid_names() {
    let model = ResNet::load(
        FIXTURES.path("parity/resnet18_tiny.safetensors"),
        "resnet18",
        &Device::Cpu,
    )
    .unwrap();
    let x = Tensor::zeros((1, 3, 32, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    let msg = model.forward_to(&x, "layer5").unwrap_err().to_string();
    assert!(
        msg.contains("unknown layer `layer5`")
            && msg.contains("layer4.1")
            && msg.contains("avgpool"),
        "{msg}"
    );
    let bad = Tensor::zeros((1, 4, 32, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(model
        .forward(&bad)
        .unwrap_err()
        .to_string()
        .contains("(batch, 3, height, width)"));
    let act = model.forward_to(&x, "layer3").unwrap();
    assert!(model
        .forward_from(&act, "layer4")
        .unwrap_err()
        .to_string()
        .contains("activation of `layer4`"));
}

#[test]
fn corrupt_and_empty_weights_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert!(ResNet::load(&empty, "resnet18", &Device::Cpu)
        .unwrap_err()
        .to_string()
        .contains("empty"));
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"this is not a checkpoint at all").unwrap();
    let msg = ResNet::load(&junk, "resnet18", &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not a safetensors file"), "{msg}");
    let truncated = dir.path().join("trunc.pth.tar");
    let bytes = std::fs::read(FIXTURES.path("parity/resnet18_tiny_places.pth.tar")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let msg = ResNet::load(&truncated, "resnet18", &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("legacy PyTorch format"), "{msg}");
    let missing = ResNet::load(
        dir.path().join("nope.safetensors"),
        "resnet18",
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
}

#[test]
fn input_gradients_match_torch_through_the_stem_max_pool() {
    let model = ResNet::load(
        FIXTURES.path("parity/resnet18_tiny.safetensors"),
        "resnet18",
        &Device::Cpu,
    )
    .unwrap();
    let x = candle_core::Var::from_tensor(&FIXTURES.f32("parity/input_64.npy")).unwrap();
    let logits = model.forward(x.as_tensor()).unwrap();
    let score = xai_models::ClassLogit(3)
        .score(&logits)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = score.backward().unwrap();
    let grad = grads.get(x.as_tensor()).expect("input gradient");
    assert_close(
        "input gradient",
        grad,
        &FIXTURES.f32("parity/resnet18_tiny.input_grad.npy"),
    );
}
