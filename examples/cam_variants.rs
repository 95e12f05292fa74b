//! A folder of images × Grad-CAM, AblationCAM and ScoreCAM (the seed's Task 2).
//!
//! ```text
//! # offline: four generated test-world scenes and the built-in `objects` model
//! cargo run --release --example cam_variants
//!
//! # your images and weights
//! cargo run --release --example cam_variants -- --images photos/ --weights resnet50.safetensors \
//!     --arch resnet50 --out cam_variants_out
//! ```
//!
//! Writes, under `--out` (default `target/cam_variants`):
//! - `gray/<stem>.<method>.png`: the greyscale maps of every image and method;
//! - `overlay_<method>/<stem>.png`: one folder of overlays per method;
//! - `sheet/<stem>.png`: a side-by-side sheet per image (the image, then each method's overlay).

use std::path::{Path, PathBuf};

use image::{GenericImage, RgbImage};
use xai::cam::{render, Cam, Method, Targets};
use xai::models::candle_core::Device;
use xai::models::{preprocess, Backbone};
use xai::testworld::{pretrained, Scene, SceneConfig, Task};

const METHODS: [Method; 3] = [Method::GradCam, Method::AblationCam, Method::ScoreCam];

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut images_dir = None;
    let mut weights = None;
    let mut arch = None;
    let mut out = PathBuf::from("target/cam_variants");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--images" => images_dir = Some(PathBuf::from(value)),
            "--weights" => weights = Some(PathBuf::from(value)),
            "--arch" => arch = Some(value),
            "--out" => out = PathBuf::from(value),
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    let dev = Device::Cpu;
    let model: Box<dyn Backbone> = match &weights {
        Some(w) => xai::zoo::load(arch.as_deref(), Some(w), &dev)?,
        None => Box::new(pretrained::model(Task::Objects)?),
    };
    let spec = model.input_spec().clone();
    // (stem, picture) pairs: the user's folder, or four generated scenes.
    let pictures: Vec<(String, RgbImage)> = match &images_dir {
        Some(dir) => images_in(dir)?
            .into_iter()
            .map(|p| {
                let stem = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok((stem, preprocess::load_image(&p)?))
            })
            .collect::<Result<_, xai::models::Error>>()?,
        None => (0..4u64)
            .map(|seed| {
                let scene = Scene::generate(seed, &SceneConfig::default())?;
                Ok((format!("scene{seed}_{}", scene.object.name()), scene.image))
            })
            .collect::<Result<_, Box<dyn std::error::Error>>>()?,
    };

    let drivers = METHODS
        .iter()
        .map(|m| Cam::new(&model, m.build(None)?))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(out.join("gray"))?;
    std::fs::create_dir_all(out.join("sheet"))?;
    for m in METHODS {
        std::fs::create_dir_all(out.join(format!("overlay_{m}")))?;
    }
    for (stem, picture) in &pictures {
        let shown = preprocess::resize_and_crop(picture, &spec);
        let x = preprocess::to_tensor(&shown, &spec, &dev)?.unsqueeze(0)?;
        let (w, h) = shown.dimensions();
        let mut sheet = RgbImage::new(w * (1 + METHODS.len() as u32), h);
        sheet.copy_from(&shown, 0, 0)?;
        for (i, (m, cam)) in METHODS.iter().zip(&drivers).enumerate() {
            let result = cam.compute(&x, &Targets::TopClass)?;
            let map = result.normalise();
            let map = map.index_axis(ndarray::Axis(0), 0);
            render::gray_image(map).save(out.join("gray").join(format!("{stem}.{m}.png")))?;
            let overlay = render::overlay(&shown, map, &Default::default())?;
            overlay.save(out.join(format!("overlay_{m}")).join(format!("{stem}.png")))?;
            sheet.copy_from(&overlay, w * (1 + i as u32), 0)?;
            let class = result
                .classes
                .as_ref()
                .and_then(|c| c.first())
                .copied()
                .unwrap_or(0);
            println!("{stem}: {m} explains {}", model.labels().name(class));
        }
        sheet.save(out.join("sheet").join(format!("{stem}.png")))?;
    }
    println!("written under {}", out.display());
    Ok(())
}
