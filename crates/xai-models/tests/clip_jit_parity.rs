//! CLIP from TorchScript archives: the `.pt` files OpenAI's `clip.load` caches
//! (`~/.cache/clip/RN50.pt`, `ViT-B-32.pt`, …) are `torch.jit.save` archives of the traced
//! model, stored in float16.
//!
//! Fixtures: `tools/parity/make_clip_jit_fixtures.py`, built with OpenAI's own `clip.model`
//! code, in `testdata/parity/clip_jit/`: `rn_tiny.pt` holds exactly the weights of
//! `clip_rn/tiny.safetensors`; `vit_tiny.pt` is a seeded random ViT CLIP with its reference
//! embeddings. Tolerance: 1e-4 of the reference's largest magnitude.

#![allow(clippy::unwrap_used)]

use candle_core::{Device, Tensor};
use xai_models::clip::{Clip, ClipOptions, ImageTower};
use xai_models::{Error, WeightsFile};

mod common;
use common::Fixtures;

const FIXTURES: Fixtures = Fixtures("parity");

fn assert_close(name: &str, ours: &Tensor, reference: &Tensor) {
    assert_eq!(ours.dims(), reference.dims(), "{name}: shape");
    let scale = common::max_abs(reference);
    let d = common::max_abs(&(ours - reference).unwrap());
    assert!(scale > 1e-3, "{name}: degenerate reference");
    assert!(
        d <= 1e-4 * scale,
        "{name}: max abs diff {d:e} exceeds 1e-4 of scale {scale:e}"
    );
}

fn expected_names(model: &str) -> Vec<String> {
    let text = std::fs::read_to_string(FIXTURES.path("clip_jit/names.json")).unwrap();
    let names: serde_json::Value = serde_json::from_str(&text).unwrap();
    names[model]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// The archive gives the traced module's `state_dict()`: the same names, and the same values
/// as the safetensors file the module was built from.
#[test]
fn a_torchscript_archive_reads_as_its_state_dict() {
    let jit = WeightsFile::open(FIXTURES.path("clip_jit/rn_tiny.pt"), &Device::Cpu).unwrap();
    let names: Vec<String> = jit.names().into_iter().map(str::to_string).collect();
    assert_eq!(names, expected_names("rn_tiny"));
    let source =
        WeightsFile::open(FIXTURES.path("clip_rn/tiny.safetensors"), &Device::Cpu).unwrap();
    for name in source.names() {
        let ours = jit.get(name).unwrap_or_else(|| panic!("{name} missing"));
        let theirs = source.get(name).unwrap();
        assert_eq!(ours.dims(), theirs.dims(), "{name}");
        let ours = ours.to_dtype(candle_core::DType::F32).unwrap();
        let theirs = theirs.to_dtype(candle_core::DType::F32).unwrap();
        assert_eq!(
            common::max_abs(&(ours - theirs).unwrap()),
            0.0,
            "{name} differs after the round trip"
        );
    }
    assert_eq!(
        WeightsFile::open(FIXTURES.path("clip_jit/vit_tiny.pt"), &Device::Cpu)
            .unwrap()
            .names(),
        expected_names("vit_tiny")
    );
}

/// Loads a TorchScript fixture (4 vision heads, 2 text heads, as the fixtures were built) and
/// checks both towers' embeddings against the reference files.
fn load_and_check(archive: &str, pixels: &str, image_ref: &str, text_ref: &str) -> Clip {
    let options = ClipOptions::default()
        .with_vision_heads(4)
        .with_text_heads(2);
    let clip = Clip::load_with(FIXTURES.path(archive), options, &Device::Cpu).unwrap();
    let image = clip.encode_image(&FIXTURES.f32(pixels)).unwrap();
    assert_close("encode_image", &image, &FIXTURES.f32(image_ref));
    let text = clip
        .encode_text(&FIXTURES.i64("clip_rn/text_ids.npy"))
        .unwrap();
    assert_close("encode_text", &text, &FIXTURES.f32(text_ref));
    clip
}

#[test]
fn clip_rn_loads_from_an_openai_torchscript_file() {
    let clip = load_and_check(
        "clip_jit/rn_tiny.pt",
        "clip_rn/pixels.npy",
        "clip_rn/image_embeds.npy",
        "clip_rn/text_embeds.npy",
    );
    assert!(matches!(clip.visual(), ImageTower::ResNet(_)));
}

#[test]
fn clip_vit_loads_from_an_openai_torchscript_file() {
    let clip = load_and_check(
        "clip_jit/vit_tiny.pt",
        "clip/pixels.npy",
        "clip_jit/vit_tiny.image.npy",
        "clip_jit/vit_tiny.text.npy",
    );
    assert!(!matches!(clip.visual(), ImageTower::ResNet(_)));
    assert_eq!((clip.image_size(), clip.embed_dim()), (32, 24));
}

/// A cut-off download is refused with the file's name, not a panic.
#[test]
fn a_truncated_archive_is_named_in_the_error() {
    let bytes = std::fs::read(FIXTURES.path("clip_jit/vit_tiny.pt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ViT-B-32.pt");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = WeightsFile::open(&path, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::WeightsFormat { .. }), "{err}");
    assert!(err.to_string().contains("ViT-B-32.pt"), "{err}");
}
