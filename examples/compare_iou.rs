//! Grad-CAM vs LIME on the same images, compared by IoU (the seed's Task 4), offline.
//!
//! ```text
//! cargo run --release --example compare_iou                 # 40 test-world scenes
//! cargo run --release --example compare_iou -- --scenes 100 --samples 1000 --top 20
//! ```
//!
//! For each seeded test-world scene, the built-in `objects` model's top class is explained by
//! Grad-CAM (layer4) and by LIME (quickshift superpixels, black hiding, the 5 most positive
//! superpixels). Grad-CAM's region is its top `--top` % pixels (default 20 %), LIME's its
//! selected superpixels. The example prints the IoU between the two regions and each region's
//! IoU with the object's true mask, on average and split by the number of objects in the
//! scene, then states what the numbers say. `xai compare` is the same comparison for any
//! images, methods and model, with an HTML report.

use std::collections::BTreeMap;

use ndarray::{Array2, Axis};
use xai::cam::{Cam, Method, Targets};
use xai::lime::{
    image_to_float, BackboneClassifier, HideColor, LabelChoice, LimeConfig, LimeImageExplainer,
    MaskOptions, Quickshift, Segmenter,
};
use xai::metrics::{iou, Binarize};
use xai::models::candle_core::Device;
use xai::models::{preprocess, Backbone};
use xai::testworld::{Scene, SceneConfig};

#[derive(Default)]
struct Group {
    n: usize,
    agreement: f64,
    cam_truth: f64,
    lime_truth: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut scenes = 40u64;
    let mut samples = 1000usize;
    let mut top = 20.0f32;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--scenes" => scenes = value.parse()?,
            "--samples" => samples = value.parse()?,
            "--top" => top = value.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    let dev = Device::Cpu;
    let model = xai::zoo::load(Some("testworld-objects"), None, &dev)?;
    let model: &dyn Backbone = model.as_ref();
    let spec = model.input_spec().clone();
    let cam = Cam::new(&model, Method::GradCam.build(None)?)?;
    let explainer = LimeImageExplainer::new(LimeConfig {
        num_samples: samples,
        hide_color: HideColor::Rgb([0, 0, 0]),
        labels: LabelChoice::Top(1),
        ..LimeConfig::default()
    })?;
    let mut classifier = BackboneClassifier::new(model);
    let rule = Binarize::TopPercent(top);
    let config = SceneConfig {
        width: spec.width as u32,
        height: spec.height as u32,
        ..SceneConfig::default()
    };
    let mut groups: BTreeMap<usize, Group> = BTreeMap::new();
    for seed in 0..scenes {
        let scene = Scene::generate(seed, &config)?;
        let picture = preprocess::resize_and_crop(&scene.image, &spec);
        let x = preprocess::to_tensor(&picture, &spec, &dev)?.unsqueeze(0)?;
        let result = cam.compute(&x, &Targets::TopClass)?;
        let class = result
            .classes
            .as_ref()
            .and_then(|c| c.first().copied())
            .unwrap_or(0);
        let map = result.normalise().index_axis(Axis(0), 0).to_owned();
        let cam_region = rule.apply(map.view())?;
        let segments = Quickshift::default().segment(image_to_float(&picture).view())?;
        let exp = explainer.explain(&picture, segments, &mut classifier)?;
        let options = MaskOptions {
            positive_only: true,
            num_features: 5,
            ..MaskOptions::default()
        };
        let (_, mask) = exp.image_and_mask(class, &options)?;
        let lime_region = mask.mapv(|v| v != 0);
        let truth_mask = scene.object_mask();
        let truth = Array2::from_shape_fn(map.dim(), |(r, c)| truth_mask.get(c as u32, r as u32));
        let g = groups.entry(scene.instances.len()).or_default();
        g.n += 1;
        g.agreement += iou(cam_region.view(), lime_region.view())? as f64;
        g.cam_truth += iou(cam_region.view(), truth.view())? as f64;
        g.lime_truth += iou(lime_region.view(), truth.view())? as f64;
    }
    let total = groups.values().fold(Group::default(), |mut t, g| {
        t.n += g.n;
        t.agreement += g.agreement;
        t.cam_truth += g.cam_truth;
        t.lime_truth += g.lime_truth;
        t
    });
    println!(
        "Grad-CAM (top {top} %) vs LIME (5 superpixels, {samples} samples), {scenes} scenes\n"
    );
    println!(
        "| objects in scene | scenes | IoU Grad-CAM–LIME | IoU Grad-CAM–object | IoU LIME–object |"
    );
    println!("|---|---|---|---|---|");
    let row = |label: String, g: &Group| {
        let n = g.n.max(1) as f64;
        println!(
            "| {label} | {} | {:.3} | {:.3} | {:.3} |",
            g.n,
            g.agreement / n,
            g.cam_truth / n,
            g.lime_truth / n
        );
    };
    for (objects, g) in &groups {
        row(objects.to_string(), g);
    }
    row("all".into(), &total);
    if let (Some(one), Some(two)) = (groups.get(&1), groups.get(&2)) {
        let (a1, a2) = (
            one.agreement / one.n.max(1) as f64,
            two.agreement / two.n.max(1) as f64,
        );
        println!(
            "\nAgreement is {} on single-object scenes ({a1:.3}) than on scenes with a second object ({a2:.3}).",
            if a1 > a2 { "higher" } else { "not higher" }
        );
    }
    Ok(())
}
