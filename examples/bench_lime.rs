//! Times one LIME explanation end to end, split into segmentation, building the perturbed
//! batches, converting them to model input, the model's forward passes and the surrogates.
//! Used by `tools/bench/bench_lime.py` beside lime + scikit-image + PyTorch.
//!
//! ```text
//! cargo run --release --example bench_lime -- --weights resnet50.safetensors --arch resnet50 \
//!     --image picture_224.png [--num-samples 1000] [--batch-size 32] [--iters 1]
//! ```
//!
//! The image is explained as it is (no resize): give it at the model's input size. Prints one
//! JSON line per iteration with the times in milliseconds.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::Instant;

use ndarray::{Array2, ArrayView4};
use xai::lime::{
    BackboneClassifier, HideColor, LimeConfig, LimeImageExplainer, Quickshift, Segmenter,
};
use xai::models::candle_core::{Device, D};
use xai::models::Backbone;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut weights = None;
    let mut arch = None;
    let mut image = None;
    let mut num_samples = 1000usize;
    let mut batch_size = 32usize;
    let mut iters = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--weights" => weights = Some(PathBuf::from(value)),
            "--arch" => arch = Some(value),
            "--image" => image = Some(PathBuf::from(value)),
            "--num-samples" => num_samples = value.parse()?,
            "--batch-size" => batch_size = value.parse()?,
            "--iters" => iters = value.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    let dev = Device::Cpu;
    let model: Box<dyn Backbone> = match &weights {
        Some(w) => xai::zoo::load(arch.as_deref(), Some(w), &dev)?,
        None => Box::new(xai::testworld::pretrained::model(
            xai::testworld::Task::Objects,
        )?),
    };
    let picture = match &image {
        Some(p) => xai::models::preprocess::load_image(p)?,
        None => {
            let scene = xai::testworld::Scene::generate(0, &Default::default())?;
            xai::models::preprocess::resize_and_crop(&scene.image, model.input_spec())
        }
    };
    let explainer = LimeImageExplainer::new(LimeConfig {
        num_samples,
        batch_size,
        hide_color: HideColor::Rgb([0, 0, 0]),
        ..LimeConfig::default()
    })?;
    let converter = BackboneClassifier::new(model.as_ref());
    for _ in 0..iters {
        let (convert, forward) = (Cell::new(0f64), Cell::new(0f64));
        let start = Instant::now();
        let segments = Quickshift::default().segment(xai::lime::image_to_float(&picture).view())?;
        let segment_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut timed = |batch: ArrayView4<'_, u8>| -> xai::lime::Result<Array2<f64>> {
            let t0 = Instant::now();
            let x = converter.input(batch)?;
            let t1 = Instant::now();
            let logits = model.forward(&x)?;
            let max = logits.max_keepdim(D::Minus1)?;
            let e = logits.broadcast_sub(&max)?.exp()?;
            let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
            let rows = p.to_vec2::<f32>()?;
            let t2 = Instant::now();
            convert.set(convert.get() + (t1 - t0).as_secs_f64() * 1e3);
            forward.set(forward.get() + (t2 - t1).as_secs_f64() * 1e3);
            let k = rows.first().map_or(0, Vec::len);
            let flat: Vec<f64> = rows.into_iter().flatten().map(f64::from).collect();
            Array2::from_shape_vec((batch.dim().0, k), flat)
                .map_err(|e| xai::lime::Error::Classifier(e.to_string()))
        };
        let exp = explainer.explain(&picture, segments, &mut timed)?;
        let total_ms = start.elapsed().as_secs_f64() * 1e3;
        let other_ms = total_ms - segment_ms - convert.get() - forward.get();
        println!(
            "{}",
            serde_json::json!({
                "total_ms": total_ms,
                "segment_ms": segment_ms,
                "convert_ms": convert.get(),
                "forward_ms": forward.get(),
                "other_ms": other_ms,
                "superpixels": exp.superpixels.len(),
                "num_samples": num_samples,
                "top_label": exp.top_label(),
            })
        );
    }
    Ok(())
}
