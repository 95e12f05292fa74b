//! Grad-CAM of a goldfish: where does the classifier look?
//!
//! ```text
//! # offline: a test-world goldfish on water, explained with the built-in `objects` model
//! cargo run --release --example gradcam_goldfish
//!
//! # real weights (torchvision ResNet-50 saved as .safetensors/.pth) and any photograph
//! cargo run --release --example gradcam_goldfish -- --weights resnet50.safetensors --image goldfish.jpg
//! #   options: --arch resnet50 (default when --weights is given), --layer layer4, --class N,
//! #            --out PATH.png (default target/gradcam_goldfish.png)
//! ```
//!
//! Prints the top class and where the overlay was written. Offline the model is the test
//! world's small ResNet-18 (112×112 input); its class 0 is `goldfish`.

use std::path::PathBuf;

use xai::cam::{render, Cam, GradCam, Targets};
use xai::models::candle_core::Device;
use xai::models::{preprocess, Backbone};
use xai::testworld::{pretrained, ObjectKind, Scene, SceneConfig, SceneKind, Task};

#[derive(Default)]
struct Args {
    weights: Option<PathBuf>,
    arch: Option<String>,
    image: Option<PathBuf>,
    layer: Option<String>,
    class: Option<usize>,
    out: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--weights" => a.weights = Some(value()?.into()),
            "--arch" => a.arch = Some(value()?),
            "--image" => a.image = Some(value()?.into()),
            "--layer" => a.layer = Some(value()?),
            "--class" => a.class = Some(value()?.parse().map_err(|e| format!("--class: {e}"))?),
            "--out" => a.out = Some(value()?.into()),
            "-h" | "--help" => {
                return Err(
                    "usage: gradcam_goldfish [--weights FILE [--arch A]] [--image IMG] \
                            [--layer NAME] [--class N] [--out PATH.png]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(a)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let dev = Device::Cpu;
    let model: Box<dyn Backbone> = match &args.weights {
        Some(w) => xai::zoo::load(
            Some(args.arch.as_deref().unwrap_or("resnet50")),
            Some(w),
            &dev,
        )?,
        None => Box::new(pretrained::model(Task::Objects)?),
    };
    let spec = model.input_spec().clone();
    // The picture: the user's image, or a seeded test-world goldfish on water.
    let picture = match &args.image {
        Some(p) => preprocess::load_image(p)?,
        None => {
            let config = SceneConfig::default();
            Scene::generate_with(
                3,
                &config,
                Some(ObjectKind::Goldfish),
                Some(SceneKind::Water),
            )?
            .image
        }
    };
    let shown = preprocess::resize_and_crop(&picture, &spec);
    let x = preprocess::to_tensor(&shown, &spec, &dev)?.unsqueeze(0)?;

    let mut cam = Cam::new(&model, GradCam)?;
    if let Some(layer) = &args.layer {
        cam = cam.with_layers(&[layer])?;
    }
    let targets = args.class.map_or(Targets::TopClass, Targets::Class);
    let result = cam.compute(&x, &targets)?;
    let map = result.normalise();
    let map = map.index_axis(ndarray::Axis(0), 0);
    let overlay = render::overlay(&shown, map, &Default::default())?;

    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("target/gradcam_goldfish.png"));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    overlay.save(&out)?;

    let logits = model.forward(&x)?.squeeze(0)?.to_vec1::<f32>()?;
    let top = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
        .unwrap_or(0);
    println!("top class: {top} ({})", model.labels().name(top));
    if let Some(c) = result.classes.as_ref().and_then(|c| c.first()) {
        println!(
            "explained class: {c} ({}) at {}",
            model.labels().name(*c),
            cam.layers().join("+")
        );
    }
    println!("overlay written to {}", out.display());
    Ok(())
}
