//! CLIP: numerical parity with transformers' `CLIPModel` and open_clip's `CLIP` on tiny seeded
//! random models, torchvision's CLIP transform, and the loader's errors.
//!
//! Fixtures: `tools/parity/make_clip_fixtures.py` → `testdata/parity/clip/`. Tolerance for the
//! embeddings: 1e-4 of the reference's largest magnitude.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use xai_models::clip::{self, Activation, Clip, ClipArch, ClipLayout, ClipOptions};
use xai_models::testing::{random_clip_vit_tensors, ClipVitSizes};
use xai_models::{Error, WeightsFile};

mod common;
use common::Fixtures;

const FIXTURES: Fixtures = Fixtures("parity/clip");

fn assert_close(name: &str, ours: &Tensor, reference: &Tensor) {
    assert_eq!(ours.dims(), reference.dims(), "{name}: shape");
    let scale = common::max_abs(reference).max(1e-6);
    let diff = common::max_abs(&(ours - reference).unwrap());
    eprintln!("{name}: max abs diff {diff:e} (scale {scale:e})");
    assert!(
        diff <= 1e-4 * scale,
        "{name}: max abs diff {diff:e} exceeds 1e-4 of scale {scale:e}"
    );
}

fn check(clip: &Clip, name: &str, ids: &str) {
    let pixels = FIXTURES.f32("pixels.npy");
    let image = clip.encode_image(&pixels).unwrap();
    assert_close(
        &format!("{name} image"),
        &image,
        &FIXTURES.f32(&format!("{name}.image.npy")),
    );
    let ids = FIXTURES.i64(ids);
    let reference = FIXTURES.f32(&format!("{name}.text.npy"));
    assert_close(
        &format!("{name} text (i64 ids)"),
        &clip.encode_text(&ids).unwrap(),
        &reference,
    );
    let ids_u32 = ids.to_dtype(DType::U32).unwrap();
    assert_close(
        &format!("{name} text (u32 ids)"),
        &clip.encode_text(&ids_u32).unwrap(),
        &reference,
    );
}

#[test]
fn hugging_face_clip_model_with_its_config() {
    // Two heads and QuickGELU come from hf_tiny/config.json beside the weights.
    let clip = Clip::load(FIXTURES.path("hf_tiny/model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(clip.layout(), ClipLayout::HuggingFace);
    assert_eq!(
        (clip.image_size(), clip.embed_dim(), clip.context_length()),
        (32, 24, 16)
    );
    assert_eq!(clip.text().heads(), 2);
    assert_eq!(clip.text().vocab_size(), 600);
    check(&clip, "hf_tiny", "ids_hf.npy");
}

#[test]
fn hugging_face_clip_model_without_a_config() {
    let weights =
        WeightsFile::open(FIXTURES.path("hf_tiny/model.safetensors"), &Device::Cpu).unwrap();
    // The same tensors, somewhere without a config.json: heads must then be given.
    let moved = WeightsFile::from_tensors(
        "/nonexistent/model.safetensors",
        weights
            .names()
            .into_iter()
            .map(|n| (n.to_string(), weights.get(n).unwrap().clone()))
            .collect(),
    );
    let options = ClipOptions::default()
        .with_vision_heads(2)
        .with_text_heads(2);
    let clip = Clip::from_weights(&moved, options, &Device::Cpu).unwrap();
    check(&clip, "hf_tiny", "ids_hf.npy");
}

#[test]
fn open_clip_quick_gelu() {
    let options = ClipOptions::default()
        .with_vision_heads(2)
        .with_text_heads(2);
    let clip = Clip::load_with(
        FIXTURES.path("oc_quickgelu.safetensors"),
        options,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(clip.layout(), ClipLayout::OpenAi);
    assert_eq!(clip.arch(), None);
    assert!(clip
        .arch_name()
        .starts_with("ViT (width 16, 2 layers, patch 8"));
    check(&clip, "oc_quickgelu", "ids_oc.npy");
}

#[test]
fn open_clip_erf_gelu() {
    let options = ClipOptions::default()
        .with_activation(Activation::Gelu)
        .with_vision_heads(2)
        .with_text_heads(2);
    let clip =
        Clip::load_with(FIXTURES.path("oc_gelu.safetensors"), options, &Device::Cpu).unwrap();
    check(&clip, "oc_gelu", "ids_oc.npy");
    // QuickGELU on erf-GELU weights is measurably off: the activation matters.
    let wrong = Clip::load_with(
        FIXTURES.path("oc_gelu.safetensors"),
        options.with_activation(Activation::QuickGelu),
        &Device::Cpu,
    )
    .unwrap();
    let diff = common::max_abs(
        &(wrong.encode_image(&FIXTURES.f32("pixels.npy")).unwrap()
            - FIXTURES.f32("oc_gelu.image.npy"))
        .unwrap(),
    );
    assert!(diff > 1e-3, "{diff}");
}

#[test]
fn batch_rows_are_independent() {
    let options = ClipOptions::default()
        .with_vision_heads(2)
        .with_text_heads(2);
    let clip = Clip::load_with(
        FIXTURES.path("oc_quickgelu.safetensors"),
        options,
        &Device::Cpu,
    )
    .unwrap();
    let pixels = FIXTURES.f32("pixels.npy");
    let both = clip.encode_image(&pixels).unwrap();
    let second = clip.encode_image(&pixels.narrow(0, 1, 1).unwrap()).unwrap();
    assert_close("row 1 alone", &second, &both.narrow(0, 1, 1).unwrap());
    // The shortest text alone is computed on fewer positions; the result is the same.
    let ids = FIXTURES.i64("ids_oc.npy");
    let all = clip.encode_text(&ids).unwrap();
    let first = clip.encode_text(&ids.narrow(0, 0, 1).unwrap()).unwrap();
    assert_close("text row 0 alone", &first, &all.narrow(0, 0, 1).unwrap());
}

fn chw_from_png(rel: &str) -> image::RgbImage {
    image::open(FIXTURES.path(rel)).unwrap().to_rgb8()
}

#[test]
fn preprocessing_matches_torchvision() {
    let pre = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/preprocess");
    for stem in ["chelsea_300x200", "astronaut_333x517"] {
        let img = image::open(pre.join(format!("{stem}.png")))
            .unwrap()
            .to_rgb8();
        let ours = clip::preprocess(&img, 32, &Device::Cpu).unwrap();
        let reference = FIXTURES
            .f32(&format!("pre_{stem}_32.npy"))
            .unsqueeze(0)
            .unwrap();
        assert_eq!(ours.dims(), reference.dims());
        // Same 8-bit pixels and the same f32 arithmetic: equal up to the last bit.
        let diff = common::max_abs(&(&ours - &reference).unwrap());
        assert!(diff <= 1e-6, "{stem}: {diff}");
    }
    let rocket = image::open(pre.join("rocket_200x300.png"))
        .unwrap()
        .to_rgb8();
    let ours = clip::resize_and_crop(&rocket, 224);
    let reference = chw_from_png("rocket_200x300.clip224.png");
    assert_eq!(ours.dimensions(), reference.dimensions());
    let worst = ours
        .as_raw()
        .iter()
        .zip(reference.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 1, "rocket 224: {worst} grey levels");
}

fn tiny_weights() -> WeightsFile {
    WeightsFile::from_tensors(
        "tiny.safetensors",
        random_clip_vit_tensors(&ClipVitSizes::tiny(), 3).unwrap(),
    )
}

fn without(file: &WeightsFile, drop: &str) -> WeightsFile {
    let tensors: HashMap<String, Tensor> = file
        .names()
        .into_iter()
        .filter(|n| *n != drop)
        .map(|n| (n.to_string(), file.get(n).unwrap().clone()))
        .collect();
    WeightsFile::from_tensors(file.path(), tensors)
}

#[test]
fn loader_errors_name_the_problem() {
    let dev = Device::Cpu;
    let file = tiny_weights();
    let clip = Clip::from_weights(&file, ClipOptions::default(), &dev).unwrap();

    let err = Clip::from_weights(
        &without(&file, "visual.ln_post.bias"),
        ClipOptions::default(),
        &dev,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensors { missing, .. } if missing == &["visual.ln_post.bias"]),
        "{err}"
    );

    let mut tensors: HashMap<String, Tensor> = file
        .names()
        .into_iter()
        .map(|n| (n.to_string(), file.get(n).unwrap().clone()))
        .collect();
    tensors.insert(
        "extra.weight".into(),
        Tensor::zeros(3, DType::F32, &dev).unwrap(),
    );
    tensors.insert(
        "logit_scale".into(),
        Tensor::zeros((), DType::F32, &dev).unwrap(),
    );
    let err = Clip::from_weights(
        &WeightsFile::from_tensors("x", tensors),
        ClipOptions::default(),
        &dev,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedTensors { unexpected, .. } if unexpected == &["extra.weight"]),
        "{err}"
    );

    let resnet = WeightsFile::from_tensors(
        "resnet.safetensors",
        xai_models::testing::random_resnet_tensors(
            &xai_models::ResNetConfig::resnet18().with_width(4),
            0,
        )
        .unwrap(),
    );
    let err = Clip::from_weights(&resnet, ClipOptions::default(), &dev).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("not a CLIP checkpoint") && msg.contains("`bn1.bias`"),
        "{msg}"
    );

    let err =
        Clip::from_weights(&file, ClipOptions::default().with_vision_heads(5), &dev).unwrap_err();
    assert!(err.to_string().contains("5 attention heads"), "{err}");

    let pixels = Tensor::zeros((1, 3, 224, 224), DType::F32, &dev).unwrap();
    let err = clip.encode_image(&pixels).unwrap_err();
    assert!(
        matches!(err, Error::InputShape { .. }) && err.to_string().contains("(N, 3, 32, 32)"),
        "{err}"
    );

    let ids = Tensor::from_vec(vec![1u32, 100, 0, 0], (1, 4), &dev).unwrap();
    let err = clip.encode_text(&ids).unwrap_err();
    assert!(err.to_string().contains("(N, 16)"), "{err}");
    let mut row = vec![0u32; 16];
    row[..3].copy_from_slice(&[98, 100, 99]);
    let err = clip
        .encode_text(&Tensor::from_vec(row, (1, 16), &dev).unwrap())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("id 100, outside the vocabulary 0..100"),
        "{err}"
    );

    let err = clip.check_arch(ClipArch::VitB32).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("ViT-B/32") && msg.contains("ViT (width 64"),
        "{msg}"
    );
}

#[test]
fn clip_arch_names() {
    for arch in ClipArch::ALL {
        assert_eq!(ClipArch::parse(arch.name()).unwrap(), arch);
        assert_eq!(arch.to_string().parse::<ClipArch>().unwrap(), arch);
    }
    assert_eq!(ClipArch::parse("rn50").unwrap(), ClipArch::Rn50);
    let err = ClipArch::parse("ViT-H/14").unwrap_err();
    assert!(matches!(err, Error::UnknownArch { .. }), "{err}");
}
