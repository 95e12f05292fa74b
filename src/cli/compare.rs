//! `xai compare`: several explanations of the same images side by side — pairwise agreement
//! (IoU, Dice, rank correlation, IoU over thresholds), faithfulness (deletion / insertion),
//! localisation against ground-truth masks — as CSV, Markdown and an offline HTML report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use ndarray::{Array2, Axis};
use xai::cam::{render, Cam, Method, Targets};
use xai::lime::{
    BackboneClassifier, FeatureSelection, HideColor, LabelChoice, LimeConfig, LimeImageExplainer,
    MaskOptions, Segmenter,
};
use xai::metrics::{
    deletion, dice, insertion, iou, iou_curve, score_map, spearman, thresholds, Binarize,
    ConfidenceScores, Curve, DeletionConfig, NoisyLinearImputer, Road, Unanchored,
};
use xai::models::{preprocess, Backbone, ClassProbability, ResNet, ResNetConfig, WeightsFile};
use xai::testworld::{Scene, SceneConfig};

use super::cam::save_png;
use super::{collect_images, file_stem, write_atomic, CliError, CliResult, ModelArgs};

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Image file or folder (searched recursively). Default: `--scenes` seeded test-world
    /// scenes written to OUT/scenes, with their object masks as ground truth.
    #[arg(long, value_name = "IMG|DIR")]
    image: Option<PathBuf>,
    /// Ground-truth masks for localisation: `<stem>.png` per image (non-zero = object), in the
    /// image's own geometry (resized and cropped like the image). Default with generated
    /// scenes: their object masks.
    #[arg(long, value_name = "DIR")]
    masks: Option<PathBuf>,
    /// Methods to compare: any of xai cam's methods and `lime`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gradcam,ablationcam,scorecam,lime"
    )]
    methods: Vec<String>,
    /// Read the maps of a previous `xai cam` / `xai lime` run from DIR
    /// (`<stem>.<method>.npy`; `<stem>.lime_map.npy` and `<stem>.lime_mask.npy`) instead of
    /// computing them.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// How a map becomes a region for IoU: `top:P` (the P % highest pixels), `threshold:T`
    /// (map ≥ T on the [0,1] map), `count:N`, or `otsu`. LIME's region is always its selected
    /// superpixels (`--lime-features`).
    #[arg(long, default_value = "top:20")]
    binarize: String,
    /// Number of generated test-world scenes when no --image is given.
    #[arg(long, default_value_t = 8)]
    scenes: usize,
    /// LIME: perturbation samples.
    #[arg(long, default_value_t = 1000)]
    lime_samples: usize,
    /// LIME: superpixels in its region (lime's get_image_and_mask num_features, positive only).
    #[arg(long, default_value_t = 5)]
    lime_features: usize,
    /// LIME: seed of the sample matrix (lime's random_state).
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Steps of the deletion and insertion curves.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Skip ROAD (18 imputations and 19 model calls per map, the costliest metric).
    #[arg(long)]
    no_road: bool,
    /// Model-randomisation sanity check of the CAM methods (ResNets): re-initialise fc, then
    /// layer4, …, down to the stem (cascading) and write each map's Spearman correlation with
    /// the original to sanity.csv / sanity.md. A method whose maps keep correlating ignores
    /// what the model learned.
    #[arg(long)]
    sanity: bool,
    /// Output folder: pairwise_iou.csv, pairwise_iou.md, metrics.csv, report.html.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// One method's explanation of one image: the [0,1] map and the region compared by IoU.
struct Explained {
    method: String,
    map: Array2<f32>,
    region: Array2<bool>,
    deletion: Curve,
    insertion: Curve,
    /// ROADCombined (`None` with --no-road).
    road: Option<f32>,
    /// Grad-CAM++'s drop in confidence (%) and whether the confidence increased.
    drop: f32,
    increase: bool,
}

struct ImageResult {
    stem: String,
    picture: image::RgbImage,
    class: usize,
    class_name: String,
    objects: Option<usize>,
    truth: Option<Array2<bool>>,
    explained: Vec<Explained>,
    /// Per CAM method, the cascading randomisation steps (with --sanity).
    sanity: Vec<(String, Vec<xai::metrics::sanity::SanityStep>)>,
}

fn metric_err(e: xai::metrics::Error) -> CliError {
    CliError::Msg(e.to_string())
}

fn cam_err(e: xai::cam::Error) -> CliError {
    CliError::Msg(e.to_string())
}

fn lime_err(e: xai::lime::Error) -> CliError {
    CliError::Msg(e.to_string())
}

fn parse_methods(names: &[String]) -> CliResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let name = name.trim().to_ascii_lowercase();
        if name != "lime" {
            name.parse::<Method>()
                .map_err(|e| CliError::Msg(format!("{e}, or `lime`")))?;
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.len() < 2 {
        return Err(CliError::Msg(
            "--methods needs at least two methods to compare, e.g. gradcam,lime".into(),
        ));
    }
    Ok(out)
}

/// Writes `n` seeded scenes at the model's input size, with their object masks, and returns
/// the image paths, the mask folder and each scene's number of objects.
fn generate_scenes(
    dir: &Path,
    n: usize,
    side: u32,
) -> CliResult<(Vec<PathBuf>, PathBuf, BTreeMap<String, usize>)> {
    if n == 0 {
        return Err(CliError::Msg("--scenes must be at least 1".into()));
    }
    let config = SceneConfig {
        width: side,
        height: side,
        ..SceneConfig::default()
    };
    let masks = dir.join("masks");
    let mut paths = Vec::new();
    let mut objects = BTreeMap::new();
    for seed in 0..n as u64 {
        let scene = Scene::generate(seed, &config).map_err(|e| CliError::Msg(e.to_string()))?;
        let stem = format!("scene_{seed:06}");
        let mask = scene.object_mask().to_gray_image();
        save_png(&masks.join(format!("{stem}.png")), |tmp| {
            mask.save_with_format(tmp, image::ImageFormat::Png)
        })?;
        let path = dir.join("images").join(format!("{stem}.png"));
        save_png(&path, |tmp| {
            scene.image.save_with_format(tmp, image::ImageFormat::Png)
        })?;
        objects.insert(stem, scene.instances.len());
        paths.push(path);
    }
    Ok((paths, masks, objects))
}

/// A user's mask, resized and cropped like the image, as booleans (non-zero = object).
fn load_truth(path: &Path, model: &dyn Backbone) -> CliResult<Array2<bool>> {
    let img = preprocess::load_image(path)?;
    let img = preprocess::resize_and_crop(&img, model.input_spec());
    let (w, h) = img.dimensions();
    Ok(Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
        img.get_pixel(c as u32, r as u32).0.iter().any(|&v| v > 127)
    }))
}

fn read_npy<T: ndarray_npy::ReadableElement>(path: &Path) -> CliResult<Array2<T>> {
    let file = std::fs::File::open(path).map_err(|e| {
        CliError::Msg(format!(
            "{}: {e}; --from expects the output folder of `xai cam` / `xai lime` on the same images",
            path.display()
        ))
    })?;
    ndarray_npy::ReadNpyExt::read_npy(file).map_err(|e| {
        CliError::Msg(format!(
            "{}: not a 2-D .npy map of the right type: {e}",
            path.display()
        ))
    })
}

fn check_shape(
    what: &str,
    path: &Path,
    got: (usize, usize),
    want: (usize, usize),
) -> CliResult<()> {
    if got != want {
        return Err(CliError::Msg(format!(
            "{}: {what} is {}×{}, the model's input is {}×{}; use the same model (or input size) as the run that wrote it",
            path.display(),
            got.0,
            got.1,
            want.0,
            want.1
        )));
    }
    Ok(())
}

pub(crate) fn run(args: CompareArgs) -> CliResult<()> {
    let methods = parse_methods(&args.methods)?;
    let rule: Binarize = args
        .binarize
        .parse()
        .map_err(|e: xai::metrics::Error| CliError::Msg(format!("--binarize: {e}")))?;
    if args.lime_features == 0 || args.lime_samples == 0 || args.steps == 0 {
        return Err(CliError::Msg(
            "--lime-features, --lime-samples and --steps must be at least 1".into(),
        ));
    }
    let model = args.model.load()?;
    let model: &dyn Backbone = model.as_ref();
    std::fs::create_dir_all(&args.out).map_err(|e| CliError::io(&args.out, e))?;
    let (images, masks_dir, objects) = match &args.image {
        Some(p) => (collect_images(p)?, args.masks.clone(), BTreeMap::new()),
        None => {
            let side = model.input_spec().height.max(model.input_spec().width) as u32;
            let (paths, masks, objects) =
                generate_scenes(&args.out.join("scenes"), args.scenes, side)?;
            (paths, Some(args.masks.clone().unwrap_or(masks)), objects)
        }
    };
    let cams: Vec<(String, Cam<'_>)> = methods
        .iter()
        .filter(|m| *m != "lime")
        .map(|m| {
            let method: Method = m.parse().map_err(cam_err)?;
            Ok((
                m.clone(),
                Cam::new(&model, method.build(None).map_err(cam_err)?).map_err(cam_err)?,
            ))
        })
        .collect::<CliResult<_>>()?;
    let randomised = if args.sanity {
        randomised_models(&args.model, model)?
    } else {
        Vec::new()
    };
    let explainer = LimeImageExplainer::new(LimeConfig {
        num_samples: args.lime_samples,
        hide_color: HideColor::Rgb([0, 0, 0]),
        feature_selection: FeatureSelection::Auto,
        seed: args.seed,
        labels: LabelChoice::Top(1),
        ..LimeConfig::default()
    })
    .map_err(lime_err)?;
    let segmenter = xai::lime::Quickshift::default();
    let mut classifier = BackboneClassifier::new(model);
    let deletion_config = {
        let spec = model.input_spec();
        DeletionConfig::default()
            .with_steps(args.steps, spec.height, spec.width)
            .map_err(metric_err)?
    };

    // Regions with no known neighbour are filled with 0 (the normalisation mean), as the
    // reference's solver does, instead of failing: Grad-CAM maps tie at 0 over whole areas.
    let road = Road {
        imputer: NoisyLinearImputer::default().with_unanchored(Unanchored::Zero),
        ..Road::default()
    };
    let mut results = Vec::new();
    for path in &images {
        let stem = file_stem(path);
        let picture =
            preprocess::resize_and_crop(&preprocess::load_image(path)?, model.input_spec());
        let x = preprocess::to_tensor(&picture, model.input_spec(), model.device())?;
        let logits = model.forward(&x.unsqueeze(0)?)?.squeeze(0)?;
        let class = logits.argmax(0)?.to_scalar::<u32>()? as usize;
        let shape = (picture.height() as usize, picture.width() as usize);
        let truth = match &masks_dir {
            Some(dir) => {
                let p = dir.join(format!("{stem}.png"));
                if p.exists() {
                    let t = load_truth(&p, model)?;
                    check_shape("the mask", &p, t.dim(), shape)?;
                    Some(t)
                } else {
                    eprintln!(
                        "{}: no ground-truth mask, localisation skipped",
                        p.display()
                    );
                    None
                }
            }
            None => None,
        };
        let mut explained = Vec::new();
        for method in &methods {
            let (map, region) = if let Some(dir) = &args.from {
                if method == "lime" {
                    let mp = dir.join(format!("{stem}.lime_map.npy"));
                    let raw: Array2<f32> = read_npy(&mp)?;
                    check_shape("the LIME map", &mp, raw.dim(), shape)?;
                    let kp = dir.join(format!("{stem}.lime_mask.npy"));
                    let mask: Array2<i32> = read_npy(&kp)?;
                    check_shape("the LIME mask", &kp, mask.dim(), shape)?;
                    (normalise(&raw), mask.mapv(|v| v != 0))
                } else {
                    let mp = dir.join(format!("{stem}.{method}.npy"));
                    let map: Array2<f32> = read_npy(&mp)?;
                    check_shape("the map", &mp, map.dim(), shape)?;
                    let region = rule.apply(map.view()).map_err(metric_err)?;
                    (map, region)
                }
            } else if method == "lime" {
                let segments = segmenter
                    .segment(xai::lime::image_to_float(&picture).view())
                    .map_err(lime_err)?;
                let exp = explainer
                    .explain(&picture, segments, &mut classifier)
                    .map_err(|e| CliError::Msg(format!("{}: {}", path.display(), lime_err(e))))?;
                let label = exp.top_label();
                let (_, mask) = exp
                    .image_and_mask(
                        label,
                        &MaskOptions {
                            positive_only: true,
                            num_features: args.lime_features,
                            ..MaskOptions::default()
                        },
                    )
                    .map_err(lime_err)?;
                let raw = xai::lime::render::weight_map(&exp, label).map_err(lime_err)?;
                (normalise(&raw), mask.mapv(|v| v != 0))
            } else {
                let cam = cams
                    .iter()
                    .find(|(n, _)| n == method)
                    .map(|(_, c)| c)
                    .ok_or_else(|| CliError::Msg(format!("no driver for {method}")))?;
                let out = cam
                    .compute(&x.unsqueeze(0)?, &Targets::Class(class))
                    .map_err(cam_err)?
                    .normalise();
                let map = out.index_axis(Axis(0), 0).to_owned();
                let region = rule.apply(map.view()).map_err(metric_err)?;
                (map, region)
            };
            if map.iter().any(|v| !v.is_finite()) {
                return Err(CliError::Msg(format!(
                    "{}: the {method} map is not finite (NaN or infinite)",
                    path.display()
                )));
            }
            let target = ClassProbability(class);
            let del =
                deletion(model, &target, &x, map.view(), &deletion_config).map_err(metric_err)?;
            let ins =
                insertion(model, &target, &x, map.view(), &deletion_config).map_err(metric_err)?;
            let road = if args.no_road {
                None
            } else {
                Some(
                    road.combined(model, &target, &x, map.view())
                        .map_err(metric_err)?
                        .combined(),
                )
            };
            let confidence = ConfidenceScores::compute(
                model,
                &x.unsqueeze(0)?,
                map.view().insert_axis(Axis(0)),
                &[&target],
            )
            .map_err(metric_err)?;
            explained.push(Explained {
                method: method.clone(),
                map,
                region,
                deletion: del,
                insertion: ins,
                road,
                drop: confidence.average_drop(),
                increase: confidence.average_increase() > 0.0,
            });
        }
        let mut sanity = Vec::new();
        let cams_only = explained.iter().filter(|e| e.method != "lime");
        for e in cams_only.filter(|_| !randomised.is_empty()) {
            let method: Method = e.method.parse().map_err(cam_err)?;
            let stage_names: Vec<&str> = SANITY_STAGES.iter().map(|(n, _)| *n).collect();
            let batch = x.unsqueeze(0)?;
            let steps = xai::metrics::sanity::cascading_randomisation(
                e.map.view(),
                &stage_names[..randomised.len()],
                |done| {
                    let m: &dyn Backbone = &randomised[done.len() - 1];
                    let cam = Cam::new(&m, method.build(None).map_err(cam_metric)?)
                        .map_err(cam_metric)?;
                    let out = cam
                        .compute(&batch, &Targets::Class(class))
                        .map_err(cam_metric)?
                        .normalise();
                    Ok(out.index_axis(Axis(0), 0).to_owned())
                },
            )
            .map_err(metric_err)?;
            sanity.push((e.method.clone(), steps));
        }
        eprintln!(
            "{}: class {class} ({}) explained by {}",
            path.display(),
            model.labels().name(class),
            methods.join(", ")
        );
        results.push(ImageResult {
            objects: objects.get(&stem).copied(),
            stem,
            picture,
            class,
            class_name: model.labels().name(class).to_string(),
            truth,
            explained,
            sanity,
        });
    }
    let files = write_reports(&args.out, &results, &rule)?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

/// The stages re-initialised by the sanity check, top first, with their parameter prefixes.
const SANITY_STAGES: [(&str, &[&str]); 6] = [
    ("fc", &["fc."]),
    ("layer4", &["layer4."]),
    ("layer3", &["layer3."]),
    ("layer2", &["layer2."]),
    ("layer1", &["layer1."]),
    ("conv1", &["conv1.", "bn1."]),
];

fn cam_metric(e: xai::cam::Error) -> xai::metrics::Error {
    match e {
        xai::cam::Error::Model(m) => xai::metrics::Error::Model(m),
        other => xai::metrics::Error::Model(xai::models::Error::Parameter {
            name: "cam",
            reason: other.to_string(),
        }),
    }
}

/// The model with its top `k` stages re-initialised, for `k = 1..=6` (seeded).
fn randomised_models(args: &ModelArgs, model: &dyn Backbone) -> CliResult<Vec<ResNet>> {
    use xai::testworld::{pretrained, Task};
    let device = model.device();
    let file = match (args.arch.as_deref(), args.weights.as_deref()) {
        (None | Some(xai::zoo::EMBEDDED_ARCH), None) => pretrained::weights(Task::Objects),
        (Some(xai::zoo::EMBEDDED_SCENES_ARCH), None) => pretrained::weights(Task::Scenes),
        (arch, Some(w)) => Ok(WeightsFile::open(
            xai::models::source::resolve_weights(arch.unwrap_or("resnet"), Some(w))?,
            device,
        )?),
        (Some(a), None) => Ok(WeightsFile::open(
            xai::models::source::resolve_weights(a, None)?,
            device,
        )?),
    }
    .map_err(|e| CliError::Msg(e.to_string()))?;
    let config = ResNetConfig::detect(&file).ok_or_else(|| {
        CliError::Msg(
            "--sanity needs a ResNet (torchvision parameter names) to re-initialise".into(),
        )
    })?;
    let mut prefixes: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (k, (_, stage)) in SANITY_STAGES.iter().enumerate() {
        prefixes.extend_from_slice(stage);
        let (weights, _) = file.randomised(&prefixes, 1000 + k as u64)?;
        out.push(
            ResNet::from_weights(&weights, config.clone(), device)?
                .with_input_spec(model.input_spec().clone())
                .with_labels(model.labels().clone())?,
        );
    }
    Ok(out)
}

/// Min-max scaling to [0,1] (a constant map becomes zeros), the CAMs' normalisation, so that
/// LIME's signed weights are binarised and plotted on the same scale.
fn normalise(map: &Array2<f32>) -> Array2<f32> {
    let (lo, hi) = map
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return Array2::zeros(map.dim());
    }
    map.mapv(|v| (v - lo) / (hi - lo))
}

struct Pair {
    image: usize,
    a: usize,
    b: usize,
    iou: f32,
    dice: f32,
    spearman: f64,
}

fn pairs(results: &[ImageResult]) -> CliResult<Vec<Pair>> {
    let mut out = Vec::new();
    for (i, r) in results.iter().enumerate() {
        for a in 0..r.explained.len() {
            for b in a + 1..r.explained.len() {
                let (ea, eb) = (&r.explained[a], &r.explained[b]);
                out.push(Pair {
                    image: i,
                    a,
                    b,
                    iou: iou(ea.region.view(), eb.region.view()).map_err(metric_err)?,
                    dice: dice(ea.region.view(), eb.region.view()).map_err(metric_err)?,
                    spearman: spearman(ea.map.view(), eb.map.view()).map_err(metric_err)?,
                });
            }
        }
    }
    Ok(out)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

fn write_text(path: &Path, text: &str) -> CliResult<PathBuf> {
    write_atomic(path, |tmp| {
        std::fs::write(tmp, text.as_bytes()).map_err(|e| CliError::io(tmp, e))
    })?;
    Ok(path.to_path_buf())
}

fn write_reports(out: &Path, results: &[ImageResult], rule: &Binarize) -> CliResult<Vec<PathBuf>> {
    let pairs = pairs(results)?;
    let methods: Vec<String> = results
        .first()
        .map(|r| r.explained.iter().map(|e| e.method.clone()).collect())
        .unwrap_or_default();
    let region_rule = format!("CAM regions: {rule}; LIME region: its selected superpixels");
    let mut files = Vec::new();

    let mut csv = format!("# {region_rule}\nimage,method_a,method_b,iou,dice,spearman\n");
    for p in &pairs {
        let r = &results[p.image];
        let _ = writeln!(
            csv,
            "{},{},{},{:.6},{:.6},{:.6}",
            r.stem, r.explained[p.a].method, r.explained[p.b].method, p.iou, p.dice, p.spearman
        );
    }
    files.push(write_text(&out.join("pairwise_iou.csv"), &csv)?);

    let mut md = format!(
        "# Pairwise agreement\n\n{region_rule}; {} images.\n\n",
        results.len()
    );
    md.push_str(
        "| method A | method B | mean IoU | mean Dice | mean Spearman |\n|---|---|---|---|---|\n",
    );
    for a in 0..methods.len() {
        for b in a + 1..methods.len() {
            let sel: Vec<&Pair> = pairs.iter().filter(|p| p.a == a && p.b == b).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {:.3} | {:.3} | {:.3} |",
                methods[a],
                methods[b],
                mean(sel.iter().map(|p| p.iou as f64)),
                mean(sel.iter().map(|p| p.dice as f64)),
                mean(sel.iter().map(|p| p.spearman))
            );
        }
    }
    let by_objects: BTreeMap<usize, Vec<&Pair>> = pairs
        .iter()
        .filter_map(|p| results[p.image].objects.map(|n| (n, p)))
        .fold(BTreeMap::new(), |mut m, (n, p)| {
            m.entry(n).or_insert_with(Vec::new).push(p);
            m
        });
    if !by_objects.is_empty() {
        md.push_str("\nMean pairwise IoU (all pairs) by the number of objects in the scene:\n\n| objects | images | mean IoU |\n|---|---|---|\n");
        for (n, sel) in &by_objects {
            let images: std::collections::BTreeSet<usize> = sel.iter().map(|p| p.image).collect();
            let _ = writeln!(
                md,
                "| {n} | {} | {:.3} |",
                images.len(),
                mean(sel.iter().map(|p| p.iou as f64))
            );
        }
    }
    md.push_str("\n## Per image\n\n| image | method A | method B | IoU | Dice | Spearman |\n|---|---|---|---|---|---|\n");
    for p in &pairs {
        let r = &results[p.image];
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} |",
            r.stem, r.explained[p.a].method, r.explained[p.b].method, p.iou, p.dice, p.spearman
        );
    }
    files.push(write_text(&out.join("pairwise_iou.md"), &md)?);

    let mut metrics = String::from(
        "# ROAD: ROADCombined over percentiles 10..90, noisy linear imputation (regions without a known neighbour filled with 0); drop/increase: Grad-CAM++'s average drop (%) and increase in confidence\nimage,class,objects,method,deletion_auc,insertion_auc,road_combined,confidence_drop,confidence_increase,pointing,energy,iou_object\n",
    );
    for r in results {
        for e in &r.explained {
            let loc = match &r.truth {
                Some(t) => Some(score_map(e.map.view(), t.view()).map_err(metric_err)?),
                None => None,
            };
            let f = |v: Option<f32>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
            let _ = writeln!(
                metrics,
                "{},{},{},{},{:.6},{:.6},{},{:.4},{},{},{},{}",
                r.stem,
                r.class,
                r.objects.map(|n| n.to_string()).unwrap_or_default(),
                e.method,
                e.deletion.auc,
                e.insertion.auc,
                f(e.road),
                e.drop,
                u8::from(e.increase),
                f(loc.map(|l| l.pointing)),
                f(loc.map(|l| l.energy)),
                f(loc.map(|l| l.iou))
            );
        }
    }
    files.push(write_text(&out.join("metrics.csv"), &metrics)?);
    if results.iter().any(|r| !r.sanity.is_empty()) {
        let mut csv = String::from("image,method,randomised,spearman,spearman_abs\n");
        let mut by: BTreeMap<(String, usize), Vec<f64>> = BTreeMap::new();
        let mut names: BTreeMap<usize, String> = BTreeMap::new();
        for r in results {
            for (method, steps) in &r.sanity {
                for (k, st) in steps.iter().enumerate() {
                    let label = st.randomised.join("+");
                    let _ = writeln!(
                        csv,
                        "{},{method},{label},{:.6},{:.6}",
                        r.stem, st.spearman, st.spearman_abs
                    );
                    by.entry((method.clone(), k)).or_default().push(st.spearman);
                    names.insert(k, label);
                }
            }
        }
        files.push(write_text(&out.join("sanity.csv"), &csv)?);
        let mut md = String::from("# Model-randomisation sanity check (cascading)\n\nMean Spearman correlation between each method's map and its map after re-initialising the stages named, top first (lower = the map depends more on the learned weights). \"constant\": images whose randomised map was constant (no ranking, left out of the mean).\n\n| method |");
        for label in names.values() {
            let _ = write!(md, " {label} |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(names.len()));
        md.push('\n');
        let methods: std::collections::BTreeSet<&String> = by.keys().map(|(m, _)| m).collect();
        for m in methods {
            let _ = write!(md, "| {m} |");
            for k in names.keys() {
                let values = by.get(&(m.clone(), *k)).cloned().unwrap_or_default();
                let constant = values.iter().filter(|v| !v.is_finite()).count();
                let v = mean(values.iter().copied().filter(|v| v.is_finite()));
                if constant > 0 {
                    let _ = write!(md, " {v:.3} ({constant} constant) |");
                } else {
                    let _ = write!(md, " {v:.3} |");
                }
            }
            md.push('\n');
        }
        files.push(write_text(&out.join("sanity.md"), &md)?);
    }
    files.push(write_text(
        &out.join("report.html"),
        &html(results, &pairs, &methods, &region_rule)?,
    )?);
    Ok(files)
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart on [0,1]×[0,1] as inline SVG.
fn svg_chart(title: &str, x_label: &str, series: &[(String, Vec<(f32, f32)>)]) -> String {
    let (w, h, l, t, r, b) = (420.0f32, 240.0f32, 40.0f32, 24.0f32, 170.0f32, 34.0f32);
    let (pw, ph) = (w - l - r, h - t - b);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{l}\" y=\"15\" font-size=\"12\">{}</text>\
         <rect x=\"{l}\" y=\"{t}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>",
        escape(title)
    );
    for i in 0..=4 {
        let v = i as f32 / 4.0;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.2}</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{v:.2}</text>",
            l - 4.0,
            t + ph * (1.0 - v) + 4.0,
            l + pw * v,
            t + ph + 14.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        l + pw / 2.0,
        h - 4.0,
        escape(x_label)
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    l + pw * x.clamp(0.0, 1.0),
                    t + ph * (1.0 - y.clamp(0.0, 1.0))
                )
            })
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            path.join(" "),
            w - r + 8.0,
            t + 14.0 * i as f32,
            w - r + 22.0,
            t + 14.0 * i as f32 + 9.0,
            escape(name)
        );
    }
    s.push_str("</svg>");
    s
}

fn png_data_uri(img: &image::RgbImage) -> CliResult<String> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| CliError::Msg(format!("encoding a report picture: {e}")))?;
    Ok(format!("data:image/png;base64,{}", base64(&bytes)))
}

/// Standard base64 (RFC 4648, with padding), for the pictures embedded in the report.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (chunk.get(1).copied().unwrap_or(0) as u32) << 8
            | chunk.get(2).copied().unwrap_or(0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The region drawn over the picture: kept pixels as they are, the rest darkened.
fn region_picture(picture: &image::RgbImage, region: &Array2<bool>) -> image::RgbImage {
    let mut img = picture.clone();
    for (x, y, p) in img.enumerate_pixels_mut() {
        if !region[[y as usize, x as usize]] {
            p.0 = p.0.map(|v| v / 4);
        }
    }
    img
}

/// Two regions in one picture: A only red, B only blue, both green.
fn overlap_picture(a: &Array2<bool>, b: &Array2<bool>) -> image::RgbImage {
    let (h, w) = a.dim();
    image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let (ia, ib) = (a[[y as usize, x as usize]], b[[y as usize, x as usize]]);
        image::Rgb(match (ia, ib) {
            (true, true) => [40, 170, 60],
            (true, false) => [210, 50, 40],
            (false, true) => [40, 90, 210],
            (false, false) => [235, 235, 235],
        })
    })
}

fn html(
    results: &[ImageResult],
    pairs: &[Pair],
    methods: &[String],
    region_rule: &str,
) -> CliResult<String> {
    let mut s = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>xai compare</title><style>\
         body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}\
         figure{display:inline-block;margin:4px;text-align:center}figcaption{font-size:12px}\
         img{width:160px;height:160px;image-rendering:pixelated}section{border-top:1px solid #ddd;margin-top:18px}\
         </style></head><body><h1>Comparison of explanations</h1>",
    );
    let _ = write!(
        s,
        "<p>{} images; methods {}. {}.</p><h2>Mean pairwise agreement</h2><table><tr><th>method A</th><th>method B</th><th>IoU</th><th>Dice</th><th>Spearman</th></tr>",
        results.len(),
        escape(&methods.join(", ")),
        escape(region_rule)
    );
    for a in 0..methods.len() {
        for b in a + 1..methods.len() {
            let sel: Vec<&Pair> = pairs.iter().filter(|p| p.a == a && p.b == b).collect();
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                escape(&methods[a]),
                escape(&methods[b]),
                mean(sel.iter().map(|p| p.iou as f64)),
                mean(sel.iter().map(|p| p.dice as f64)),
                mean(sel.iter().map(|p| p.spearman))
            );
        }
    }
    s.push_str("</table>");
    for (i, r) in results.iter().enumerate() {
        let _ = write!(
            s,
            "<section><h2>{}</h2><p>class {} ({}){}</p><figure><img src=\"{}\" alt=\"image\"><figcaption>image</figcaption></figure>",
            escape(&r.stem),
            r.class,
            escape(&r.class_name),
            r.objects.map(|n| format!(", {n} object(s)")).unwrap_or_default(),
            png_data_uri(&r.picture)?
        );
        if let Some(t) = &r.truth {
            let _ = write!(
                s,
                "<figure><img src=\"{}\" alt=\"ground truth\"><figcaption>ground truth</figcaption></figure>",
                png_data_uri(&region_picture(&r.picture, t))?
            );
        }
        s.push_str("<br>");
        for e in &r.explained {
            let overlay =
                render::overlay(&r.picture, e.map.view(), &Default::default()).map_err(cam_err)?;
            let _ = write!(
                s,
                "<figure><img src=\"{}\" alt=\"{m} map\"><figcaption>{m} map</figcaption></figure><figure><img src=\"{}\" alt=\"{m} region\"><figcaption>{m} region</figcaption></figure>",
                png_data_uri(&overlay)?,
                png_data_uri(&region_picture(&r.picture, &e.region))?,
                m = escape(&e.method)
            );
        }
        s.push_str("<br>");
        for p in pairs.iter().filter(|p| p.image == i) {
            let (a, b) = (&r.explained[p.a], &r.explained[p.b]);
            let _ = write!(
                s,
                "<figure><img src=\"{}\" alt=\"overlap\"><figcaption>{} (red) ∩ {} (blue): IoU {:.3}</figcaption></figure>",
                png_data_uri(&overlap_picture(&a.region, &b.region))?,
                escape(&a.method),
                escape(&b.method),
                p.iou
            );
        }
        s.push_str("<br>");
        // IoU between each pair's maps as the threshold on both [0,1] maps moves.
        let rules = thresholds(20);
        let mut curves = Vec::new();
        for p in pairs.iter().filter(|p| p.image == i) {
            let (a, b) = (&r.explained[p.a], &r.explained[p.b]);
            let ious = iou_curve(a.map.view(), b.map.view(), &rules).map_err(metric_err)?;
            let points: Vec<(f32, f32)> = rules
                .iter()
                .zip(ious)
                .map(|(rule, v)| match rule {
                    Binarize::Threshold(t) => (*t, v),
                    _ => (0.0, v),
                })
                .collect();
            curves.push((format!("{}–{}", a.method, b.method), points));
        }
        s.push_str(&svg_chart(
            "IoU vs threshold",
            "threshold on both maps",
            &curves,
        ));
        for (title, pick) in [
            ("Deletion (lower is better)", 0),
            ("Insertion (higher is better)", 1),
        ] {
            let series: Vec<(String, Vec<(f32, f32)>)> = r
                .explained
                .iter()
                .map(|e| {
                    let c = if pick == 0 { &e.deletion } else { &e.insertion };
                    (
                        format!("{} {:.3}", e.method, c.auc),
                        c.fractions
                            .iter()
                            .copied()
                            .zip(c.scores.iter().copied())
                            .collect(),
                    )
                })
                .collect();
            s.push_str(&svg_chart(title, "fraction of pixels", &series));
        }
        s.push_str("</section>");
    }
    s.push_str("</body></html>");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
