//! Numerical parity of CLIP's modified-ResNet image tower with open_clip, on seeded random
//! weights.
//!
//! Fixtures: `tools/parity/make_clip_rn_fixtures.py` (open_clip's own `CLIP` class, stem width
//! 4, blocks (1, 2, 1, 1), 64×64 input, 4 attention-pool heads, embedding 24, randomised
//! batch-norm), in `testdata/parity/clip_rn/`. Tolerance: 1e-4 of the reference's largest
//! magnitude.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use ndarray_npy::ReadNpyExt;
use xai_models::clip::ModifiedResNet;
use xai_models::{Error, WeightsFile};

mod common;
use common::Fixtures;

const FIXTURES: Fixtures = Fixtures("parity/clip_rn");

const HEADS: usize = 4;

/// Max abs difference, and the reference's largest magnitude.
fn diff(ours: &Tensor, reference: &Tensor) -> (f32, f32) {
    assert_eq!(ours.dims(), reference.dims(), "shape");
    let scale = reference.abs().unwrap().max_all().unwrap();
    let d = (ours - reference)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    (d.to_scalar().unwrap(), scale.to_scalar().unwrap())
}

fn assert_close(name: &str, ours: &Tensor, reference: &Tensor) {
    let (d, scale) = diff(ours, reference);
    assert!(
        scale > 1e-3,
        "{name}: degenerate reference (max |x| = {scale:e})"
    );
    assert!(
        d <= 1e-4 * scale,
        "{name}: max abs diff {d:e} exceeds 1e-4 of scale {scale:e}"
    );
}

/// Only the image tower's tensors (the file holds the text tower too).
fn visual_weights() -> WeightsFile {
    let file = WeightsFile::open(FIXTURES.path("tiny.safetensors"), &Device::Cpu).unwrap();
    let tensors: HashMap<String, Tensor> = file
        .names()
        .into_iter()
        .filter(|n| n.starts_with("visual."))
        .map(|n| (n.to_string(), file.get(n).unwrap().clone()))
        .collect();
    WeightsFile::from_tensors(file.path(), tensors)
}

fn load(weights: &WeightsFile) -> xai_models::Result<ModifiedResNet> {
    let mut ck = weights.checkout("clip-rn50");
    let tower = ModifiedResNet::from_checkout(&mut ck, "visual.", Some(HEADS), &Device::Cpu)?;
    ck.finish(&["num_batches_tracked"], None)?;
    Ok(tower)
}

#[test]
fn sizes_are_read_from_the_weights() {
    let tower = load(&visual_weights()).unwrap();
    assert_eq!(tower.width(), 4);
    assert_eq!(tower.blocks_per_stage(), [1, 2, 1, 1]);
    assert_eq!(tower.embed_dim(), 24);
    assert_eq!(tower.image_size(), 64);
    assert_eq!(tower.heads(), HEADS);
    let names: Vec<&str> = tower.layers().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stem", "layer1.0", "layer1", "layer2.0", "layer2.1", "layer2", "layer3.0", "layer3",
            "layer4.0", "layer4", "attnpool"
        ]
    );
}

#[test]
fn image_embeddings_match_open_clip() {
    let tower = load(&visual_weights()).unwrap();
    let pixels = FIXTURES.f32("pixels.npy");
    assert_close(
        "stem",
        &tower.forward_to(&pixels, "stem").unwrap(),
        &FIXTURES.f32("stem.npy"),
    );
    let layer4 = tower.forward_to(&pixels, "layer4").unwrap();
    assert_close("layer4", &layer4, &FIXTURES.f32("layer4.npy"));
    let reference = FIXTURES.f32("image_embeds.npy");
    let embeds = tower.forward(&pixels).unwrap();
    let (d, scale) = diff(&embeds, &reference);
    eprintln!("CLIP RN tiny: max abs diff {d:e}, max |ref| {scale:e}");
    assert_close("image embeddings", &embeds, &reference);
    // Resuming from a stage gives the same embedding.
    assert_close(
        "from layer4",
        &tower.forward_from(&layer4, "layer4").unwrap(),
        &reference,
    );
    let mid = tower.forward_to(&pixels, "layer2.0").unwrap();
    assert_close(
        "from layer2.0",
        &tower.forward_from(&mid, "layer2.0").unwrap(),
        &reference,
    );
}

#[test]
fn the_default_head_count_is_channels_over_64() {
    let weights = visual_weights();
    let mut ck = weights.checkout("clip-rn50");
    let tower = ModifiedResNet::from_checkout(&mut ck, "visual.", None, &Device::Cpu).unwrap();
    assert_eq!(tower.heads(), 2);
    // Another head count is another function: the override matters.
    let (d, _) = diff(
        &tower.forward(&FIXTURES.f32("pixels.npy")).unwrap(),
        &FIXTURES.f32("image_embeds.npy"),
    );
    assert!(d > 1e-4, "2 and 4 heads gave the same embeddings");
    let mut ck = weights.checkout("clip-rn50");
    let err = ModifiedResNet::from_checkout(&mut ck, "visual.", Some(3), &Device::Cpu).unwrap_err();
    assert!(
        matches!(err, Error::Parameter { name: "heads", .. }),
        "{err}"
    );
}

#[test]
fn gradients_reach_the_input() {
    let tower = load(&visual_weights()).unwrap();
    let pixels = candle_core::Var::from_tensor(&FIXTURES.f32("pixels.npy")).unwrap();
    let out = tower.forward(pixels.as_tensor()).unwrap();
    let grads = out
        .narrow(1, 0, 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = grads.get(pixels.as_tensor()).unwrap();
    assert_eq!(g.dims(), &[2, 3, 64, 64]);
    let norm = g
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(norm.is_finite() && norm > 0.0);
}

#[test]
fn a_missing_tensor_is_named() {
    let weights = visual_weights();
    let mut tensors: HashMap<String, Tensor> = weights
        .names()
        .into_iter()
        .map(|n| (n.to_string(), weights.get(n).unwrap().clone()))
        .collect();
    tensors.remove("visual.layer2.1.bn2.running_var");
    tensors.remove("visual.attnpool.k_proj.bias");
    let err = load(&WeightsFile::from_tensors("tiny", tensors)).unwrap_err();
    match &err {
        Error::MissingTensors { missing, arch, .. } => {
            assert_eq!(arch, "clip-rn50");
            assert_eq!(
                missing,
                &[
                    "visual.layer2.1.bn2.running_var".to_string(),
                    "visual.attnpool.k_proj.bias".to_string()
                ]
            );
        }
        other => panic!("expected MissingTensors, got {other}"),
    }
    assert!(err.to_string().contains("visual.layer2.1.bn2.running_var"));
}

#[test]
fn a_mis_shaped_tensor_is_named() {
    let weights = visual_weights();
    let mut tensors: HashMap<String, Tensor> = weights
        .names()
        .into_iter()
        .map(|n| (n.to_string(), weights.get(n).unwrap().clone()))
        .collect();
    let wrong = Tensor::zeros((128, 130), candle_core::DType::F32, &Device::Cpu).unwrap();
    tensors.insert("visual.attnpool.v_proj.weight".into(), wrong);
    let err = load(&WeightsFile::from_tensors("tiny", tensors.clone())).unwrap_err();
    match &err {
        Error::TensorShape {
            name,
            expected,
            actual,
            ..
        } => {
            assert_eq!(name, "visual.attnpool.v_proj.weight");
            assert_eq!(&**expected, &[128, 128]);
            assert_eq!(&**actual, &[128, 130]);
        }
        other => panic!("expected TensorShape, got {other}"),
    }
    // A positional embedding that fits no square grid.
    let wrong = Tensor::zeros((6, 128), candle_core::DType::F32, &Device::Cpu).unwrap();
    tensors.insert("visual.attnpool.positional_embedding".into(), wrong);
    let err = load(&WeightsFile::from_tensors("tiny", tensors)).unwrap_err();
    assert!(err.to_string().contains("positional_embedding"), "{err}");
}

#[test]
fn a_wrong_input_size_is_refused() {
    let tower = load(&visual_weights()).unwrap();
    for dims in [(1, 3, 96, 96), (1, 3, 64, 32), (1, 1, 64, 64)] {
        let x = Tensor::zeros(dims, candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = tower.forward(&x).unwrap_err();
        match &err {
            Error::InputShape { expected, .. } => {
                assert!(expected.contains("(batch, 3, 64, 64)"), "{err}")
            }
            other => panic!("expected InputShape, got {other}"),
        }
    }
    // Sizes torch also accepts (the same 2×2 final grid) are fine.
    let x = Tensor::zeros((1, 3, 65, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(tower.forward(&x).unwrap().dims(), &[1, 24]);
    let err = tower.forward_to(&x, "layer5").unwrap_err();
    assert!(matches!(err, Error::UnknownLayer { .. }), "{err}");
}

/// The whole checkpoint through the `Clip` façade: the RN50 layout is detected, both towers
/// are read with one checkout, and both embeddings match open_clip's `encode_image` and
/// `encode_text`.
#[test]
fn the_clip_facade_reads_both_towers_of_an_rn_checkpoint() {
    use xai_models::clip::{Clip, ClipOptions, ImageTower};
    let options = ClipOptions::default()
        .with_vision_heads(HEADS)
        .with_text_heads(2);
    let clip = Clip::load_with(FIXTURES.path("tiny.safetensors"), options, &Device::Cpu).unwrap();
    assert!(matches!(clip.visual(), ImageTower::ResNet(_)));
    assert_eq!(
        (clip.image_size(), clip.embed_dim(), clip.context_length()),
        (64, 24, 16)
    );
    let image = clip.encode_image(&FIXTURES.f32("pixels.npy")).unwrap();
    assert_close("encode_image", &image, &FIXTURES.f32("image_embeds.npy"));
    let ids = ndarray::ArrayD::<i64>::read_npy(
        std::fs::File::open(FIXTURES.path("text_ids.npy")).unwrap(),
    )
    .unwrap();
    let shape = ids.shape().to_vec();
    let ids =
        Tensor::from_vec(ids.iter().copied().collect::<Vec<_>>(), shape, &Device::Cpu).unwrap();
    let text = clip.encode_text(&ids).unwrap();
    assert_close("encode_text", &text, &FIXTURES.f32("text_embeds.npy"));
}
