//! LIME on a folder of images, with the crops of the superpixels that matter (the seed's Task 3).
//!
//! ```text
//! # offline: six generated test-world scenes, the built-in `objects` model, their true masks
//! cargo run --release --example lime_explain
//!
//! # your images and weights (lime's PyTorch tutorial: ResNet50, 1000 samples, top 5 labels)
//! cargo run --release --example lime_explain -- --images photos/ --weights resnet50.safetensors \
//!     --arch resnet50 --out lime_out
//! ```
//!
//! For every image: quickshift superpixels (LIME's 4/200/0.2), a 1000-sample explanation of the
//! top 5 labels with hidden superpixels black (the tutorial's `hide_color=0`), and, for the top label, under `--out` (default `target/lime_explain`):
//! - `explanation/<stem>.png`: only the 5 most important positive superpixels, the rest black
//!   (lime's `get_image_and_mask(positive_only=True, num_features=5, hide_rest=True)`);
//! - `crop/<stem>.png`: that picture cropped to the box around those superpixels;
//! - `overlay/<stem>.png`: the image with those superpixels outlined (lime's tutorial picture);
//! - `weights/<stem>.png`: every superpixel tinted by its weight (green for, red against).
//!
//! On the test world the true object mask is known, so the example also prints how much of
//! the LIME mask lies on the object (precision) and how much of the object it covers (recall).

use std::path::{Path, PathBuf};

use image::RgbImage;
use ndarray::Array2;
use xai::lime::{
    render, BackboneClassifier, HideColor, LimeConfig, LimeImageExplainer, MaskOptions, Quickshift,
    Segmenter,
};
use xai::models::candle_core::Device;
use xai::models::{preprocess, Backbone};
use xai::testworld::{pretrained, train::HELD_OUT_SEED_BASE, Scene, SceneConfig, Task};

fn images_in(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                ["png", "jpg", "jpeg", "bmp", "webp"].contains(&e.to_ascii_lowercase().as_str())
            })
        })
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(format!("{} holds no images", dir.display()).into());
    }
    Ok(out)
}

/// The bounding box of the mask's non-zero pixels, as (x, y, width, height).
fn bounding_box(mask: &Array2<i32>) -> Option<(u32, u32, u32, u32)> {
    let mut b: Option<(usize, usize, usize, usize)> = None;
    for ((y, x), &v) in mask.indexed_iter() {
        if v != 0 {
            b = Some(match b {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    b.map(|(x0, y0, x1, y1)| {
        (
            x0 as u32,
            y0 as u32,
            (x1 - x0 + 1) as u32,
            (y1 - y0 + 1) as u32,
        )
    })
}

struct Picture {
    stem: String,
    image: RgbImage,
    truth: Option<Array2<bool>>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut images_dir = None;
    let mut weights = None;
    let mut arch = None;
    let mut out = PathBuf::from("target/lime_explain");
    let mut num_samples = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--images" => images_dir = Some(PathBuf::from(value)),
            "--weights" => weights = Some(PathBuf::from(value)),
            "--arch" => arch = Some(value),
            "--out" => out = PathBuf::from(value),
            "--num-samples" => num_samples = value.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    let dev = Device::Cpu;
    let model: Box<dyn Backbone> = match &weights {
        Some(w) => xai::zoo::load(arch.as_deref(), Some(w), &dev)?,
        None => Box::new(pretrained::model(Task::Objects)?),
    };
    let spec = model.input_spec().clone();
    let pictures: Vec<Picture> = match &images_dir {
        Some(dir) => images_in(dir)?
            .into_iter()
            .map(|p| {
                let stem = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let image = preprocess::resize_and_crop(&preprocess::load_image(&p)?, &spec);
                Ok(Picture {
                    stem,
                    image,
                    truth: None,
                })
            })
            .collect::<Result<_, xai::models::Error>>()?,
        None => (0..6u64)
            .map(|i| {
                let scene = Scene::generate(HELD_OUT_SEED_BASE + i, &SceneConfig::default())?;
                let mask_rgb =
                    image::DynamicImage::ImageLuma8(scene.object_mask().to_gray_image()).to_rgb8();
                let mask_small = preprocess::resize_and_crop(&mask_rgb, &spec);
                let truth = Array2::from_shape_fn(
                    (mask_small.height() as usize, mask_small.width() as usize),
                    |(y, x)| mask_small.get_pixel(x as u32, y as u32).0[0] >= 128,
                );
                Ok(Picture {
                    stem: format!("scene{i}_{}", scene.object.name()),
                    image: preprocess::resize_and_crop(&scene.image, &spec),
                    truth: Some(truth),
                })
            })
            .collect::<Result<_, Box<dyn std::error::Error>>>()?,
    };
    for dir in ["explanation", "crop", "overlay", "weights"] {
        std::fs::create_dir_all(out.join(dir))?;
    }
    let segmenter = Quickshift::default();
    // Hidden superpixels turn black, as in lime's PyTorch tutorial (`hide_color=0`): the
    // default mean colour leaves a flat-coloured object unchanged when it is "hidden".
    let explainer = LimeImageExplainer::new(LimeConfig {
        num_samples,
        batch_size: 32,
        hide_color: HideColor::Rgb([0, 0, 0]),
        ..LimeConfig::default()
    })?;
    let mut classifier = BackboneClassifier::new(model.as_ref());
    let top5 = MaskOptions {
        positive_only: true,
        hide_rest: true,
        num_features: 5,
        ..MaskOptions::default()
    };
    for p in &pictures {
        let start = std::time::Instant::now();
        let segments = segmenter.segment(xai::lime::image_to_float(&p.image).view())?;
        let exp = explainer.explain(&p.image, segments, &mut classifier)?;
        let label = exp.top_label();
        let (shown, mask) = exp.image_and_mask(label, &top5)?;
        shown.save(out.join("explanation").join(format!("{}.png", p.stem)))?;
        if let Some((x, y, w, h)) = bounding_box(&mask) {
            image::imageops::crop_imm(&shown, x, y, w, h)
                .to_image()
                .save(out.join("crop").join(format!("{}.png", p.stem)))?;
        }
        let kept = exp
            .image_and_mask(
                label,
                &MaskOptions {
                    hide_rest: false,
                    ..top5
                },
            )?
            .0;
        render::outline(&kept, &mask)?.save(out.join("overlay").join(format!("{}.png", p.stem)))?;
        render::weight_overlay(&exp, label, 0.6)?
            .save(out.join("weights").join(format!("{}.png", p.stem)))?;
        let local = exp.local(label)?;
        let mut line = format!(
            "{}: {} (p={:.3}), {} superpixels, surrogate R² {:.3}, {:.1} s",
            p.stem,
            model.labels().name(label),
            exp.base_scores[label],
            exp.superpixels.len(),
            local.score,
            start.elapsed().as_secs_f64()
        );
        if let Some(truth) = &p.truth {
            let selected = mask.iter().filter(|&&v| v != 0).count();
            let on_object = mask
                .iter()
                .zip(truth)
                .filter(|(&m, &t)| m != 0 && t)
                .count();
            let object = truth.iter().filter(|&&t| t).count();
            line += &format!(
                "; mask on the object: precision {:.2}, recall {:.2}",
                on_object as f64 / selected.max(1) as f64,
                on_object as f64 / object.max(1) as f64
            );
        }
        println!("{line}");
    }
    println!("written under {}", out.display());
    Ok(())
}
