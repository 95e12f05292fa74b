//! `xai lime` and `xai lime-search`: LIME explanations of images, and the search for the LIME
//! settings that best match reference masks.

use std::path::{Path, PathBuf};

use clap::Args;
use ndarray::Array2;
use xai::lime::search::{self, SearchCase, SearchConfig, SearchSpace, Strategy};
use xai::lime::{
    render, BackboneClassifier, FeatureSelection, HideColor, ImageExplanation, LabelChoice,
    LimeConfig, LimeImageExplainer, MaskOptions, Segmenter,
};
use xai::models::{preprocess, Backbone};

use super::cam::{parse_shard, progress_bar, save_png};
use super::segment_params::SegmentParams;
use super::{
    collect_images, file_stem, shard_images, write_atomic, CliError, CliResult, ModelArgs,
};

#[derive(Debug, Args)]
pub(crate) struct LimeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Image file, or a folder of images (searched recursively). Each is resized and
    /// centre-cropped to the model's input (as lime's PyTorch tutorial does) and explained at
    /// that size.
    #[arg(long, value_name = "IMG|DIR")]
    image: PathBuf,
    /// Superpixel method: quickshift (LIME's default), slic or felzenszwalb.
    #[arg(long, default_value = "quickshift", value_name = "NAME")]
    segmenter: String,
    #[command(flatten)]
    segment_params: SegmentParams,
    /// Perturbed samples per image (lime's num_samples).
    #[arg(long, default_value_t = 1000)]
    num_samples: usize,
    /// Seed of the samples: NumPy's RandomState(seed) draws, as lime's `random_state=seed`.
    /// quickshift's tie-breaking noise keeps scikit-image's seed 42, as lime gets it.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// What hidden superpixels become: `mean` (each superpixel's mean colour, lime's
    /// default), one value 0-255, or R,G,B.
    #[arg(long, default_value = "mean", value_name = "mean|R,G,B")]
    hide_color: String,
    /// Superpixels in the mask and the pictures (lime's get_image_and_mask num_features).
    #[arg(long, default_value_t = 5)]
    num_features: usize,
    /// Mask only the superpixels that speak for the label (without it, those against are
    /// marked -1 in the mask).
    #[arg(long)]
    positive_only: bool,
    /// Labels explained: the top K classes of the unperturbed image (lime's top_labels).
    #[arg(long, default_value_t = 5)]
    top_labels: usize,
    /// Explain this class (and draw it) instead of the top labels.
    #[arg(long, value_name = "N")]
    label: Option<usize>,
    /// Width of the exponential kernel on cosine distances.
    #[arg(long, default_value_t = 0.25)]
    kernel_width: f64,
    /// Feature selection of the surrogate: auto, none, highest_weights, forward_selection,
    /// lasso_path (lime's names).
    #[arg(long, default_value = "auto")]
    feature_selection: String,
    /// Images per forward pass (results do not depend on it).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Output folder: per image `<stem>.segments.npy`, `<stem>.lime.json`,
    /// `<stem>.lime_mask.npy`, `<stem>.lime_overlay.png` (the mask outlined on the image,
    /// lime's tutorial picture), `<stem>.lime_boundaries.png` (every superpixel outlined),
    /// `<stem>.lime_weights.png` (superpixels tinted by weight) and `<stem>.lime_map.npy`
    /// (each pixel's weight).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Process only shard i of n (0 ≤ i < n): image k of the sorted list goes to shard k mod n.
    #[arg(long, value_name = "i/n")]
    shard: Option<String>,
    /// Do not show progress bars (they are only drawn on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

fn lime_err(e: xai::lime::Error) -> CliError {
    match e {
        xai::lime::Error::Model(m) => CliError::Model(m),
        other => CliError::Msg(other.to_string()),
    }
}

/// The explained picture: the image resized and centre-cropped to the model's input.
fn load_picture(path: &Path, model: &dyn Backbone) -> CliResult<image::RgbImage> {
    Ok(preprocess::resize_and_crop(
        &preprocess::load_image(path)?,
        model.input_spec(),
    ))
}

fn write_npy<T: ndarray_npy::WritableElement>(path: &Path, a: &Array2<T>) -> CliResult<()> {
    write_atomic(path, |tmp| {
        ndarray_npy::write_npy(tmp, a)
            .map_err(|e| CliError::Msg(format!("{}: {e}", path.display())))
    })
}

fn explanation_json(
    exp: &ImageExplanation,
    model: &dyn Backbone,
    segmenter: &dyn Segmenter,
) -> serde_json::Value {
    let labels: Vec<serde_json::Value> = exp
        .local
        .iter()
        .map(|l| {
            let weights: Vec<serde_json::Value> = l
                .weights
                .iter()
                .map(|&(f, w)| {
                    serde_json::json!({
                        "feature": f,
                        "superpixel": exp.superpixels.label_of(f),
                        "weight": w,
                    })
                })
                .collect();
            serde_json::json!({
                "label": l.label,
                "name": model.labels().name(l.label),
                "score": exp.base_scores.get(l.label),
                "intercept": l.intercept,
                "r2": l.score,
                "local_prediction": l.local_prediction,
                "feature_selection": l.selection.name(),
                "weights": weights,
            })
        })
        .collect();
    serde_json::json!({
        "segmenter": segmenter.name(),
        "superpixels": exp.superpixels.len(),
        "superpixel_labels": exp.superpixels.label_values(),
        "num_samples": exp.config.num_samples,
        "seed": exp.config.seed,
        "kernel_width": exp.config.kernel_width,
        "hide_color": exp.config.hide_color.to_string(),
        "labels": exp.labels,
        "explanations": labels,
    })
}

pub(crate) fn run(args: LimeArgs) -> CliResult<()> {
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let hide_color: HideColor = args.hide_color.parse().map_err(lime_err)?;
    let feature_selection: FeatureSelection = args.feature_selection.parse().map_err(lime_err)?;
    let segmenter = args
        .segment_params
        .method(&args.segmenter, "--segmenter", None)?;
    let config = LimeConfig {
        num_samples: args.num_samples,
        batch_size: args.batch_size,
        kernel_width: args.kernel_width,
        hide_color,
        labels: match args.label {
            Some(l) => LabelChoice::Labels(vec![l]),
            None => LabelChoice::Top(args.top_labels),
        },
        num_features: 100_000,
        feature_selection,
        ridge_alpha: 1.0,
        seed: args.seed,
    };
    let explainer = LimeImageExplainer::new(config).map_err(lime_err)?;
    let mask_options = MaskOptions {
        positive_only: args.positive_only,
        num_features: args.num_features,
        ..MaskOptions::default()
    };
    if args.num_features == 0 {
        return Err(CliError::Msg("--num-features must be at least 1".into()));
    }
    let images = shard_images(collect_images(&args.image)?, shard);
    if let (true, Some((i, n))) = (images.is_empty(), shard) {
        eprintln!("shard {i}/{n}: no images to process");
        return Ok(());
    }
    let model = args.model.load()?;
    let model: &dyn Backbone = model.as_ref();
    if let Some(l) = args.label {
        let classes = model.labels().len();
        if classes > 0 && l >= classes {
            return Err(CliError::Msg(format!(
                "--label {l} is out of range: the model has {classes} classes (0..{})",
                classes - 1
            )));
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| CliError::io(&args.out, e))?;
    let bar = progress_bar(args.no_progress);
    let mut classifier = BackboneClassifier::new(model);
    for path in &images {
        let stem = file_stem(path);
        let picture = load_picture(path, model)?;
        let segments = segmenter
            .segment(xai::lime::image_to_float(&picture).view())
            .map_err(lime_err)?;
        bar.set_message(stem.clone());
        bar.set_length(args.num_samples as u64);
        bar.set_position(0);
        let exp = explainer
            .explain_with_progress(&picture, segments, &mut classifier, &mut |p| {
                bar.set_position(p.done as u64)
            })
            .map_err(|e| CliError::Msg(format!("{}: {}", path.display(), lime_err(e))))?;
        let label = exp.top_label();
        let (_, mask) = exp.image_and_mask(label, &mask_options).map_err(lime_err)?;
        write_npy(
            &args.out.join(format!("{stem}.segments.npy")),
            exp.superpixels.labels(),
        )?;
        write_npy(&args.out.join(format!("{stem}.lime_mask.npy")), &mask)?;
        let map = render::weight_map(&exp, label).map_err(lime_err)?;
        write_npy(&args.out.join(format!("{stem}.lime_map.npy")), &map)?;
        let json = explanation_json(&exp, model, &segmenter);
        let json_path = args.out.join(format!("{stem}.lime.json"));
        let text = serde_json::to_string_pretty(&json).map_err(|e| CliError::Msg(e.to_string()))?;
        write_atomic(&json_path, |tmp| {
            std::fs::write(tmp, text.as_bytes()).map_err(|e| CliError::io(tmp, e))
        })?;
        let (shown, _) = exp.image_and_mask(label, &mask_options).map_err(lime_err)?;
        let pictures = [
            (
                "lime_overlay",
                render::outline(&shown, &mask).map_err(lime_err)?,
            ),
            (
                "lime_boundaries",
                render::outline(&picture, exp.superpixels.labels()).map_err(lime_err)?,
            ),
            (
                "lime_weights",
                render::weight_overlay(&exp, label, 0.6).map_err(lime_err)?,
            ),
        ];
        for (kind, img) in pictures {
            let p = args.out.join(format!("{stem}.{kind}.png"));
            save_png(&p, |tmp| img.save_with_format(tmp, image::ImageFormat::Png))?;
        }
        bar.suspend(|| {
            println!(
                "{}: label {label} ({}), {} superpixels, R² {:.3} -> {}",
                path.display(),
                model.labels().name(label),
                exp.superpixels.len(),
                exp.local(label).map(|l| l.score).unwrap_or(f64::NAN),
                json_path.display()
            )
        });
    }
    bar.finish_and_clear();
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct LimeSearchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images (file or folder). Without it: held-out test-world scenes with their true object
    /// masks, explained with the built-in `objects` model.
    #[arg(long, value_name = "IMG|DIR")]
    image: Option<PathBuf>,
    /// Reference masks: a folder with one file per image, same stem (`.png`: non-zero is
    /// inside; `.npy`: a (H, W) array, > --mask-threshold is inside). Masks at the original
    /// image size are resized and cropped like the image. Default: `<image dir>/../masks`
    /// when the images sit in an `images/` folder (the test world's layout).
    #[arg(long, value_name = "DIR")]
    masks: Option<PathBuf>,
    /// Threshold of `.npy` masks (e.g. normalised Grad-CAM maps from `xai cam`).
    #[arg(long, default_value_t = 0.5)]
    mask_threshold: f32,
    /// Test-world scenes when no --image is given.
    #[arg(long, default_value_t = 8)]
    scenes: usize,
    /// `grid` (every combination) or `random` (--trials of them, seeded by --search-seed).
    #[arg(long, default_value = "random")]
    strategy: String,
    /// Combinations tried by the random search.
    #[arg(long, default_value_t = 60)]
    trials: usize,
    /// Seed of the random search's draw.
    #[arg(long, default_value_t = 0)]
    search_seed: u32,
    /// Seed of LIME's samples (the same in every trial).
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// The search space as JSON (fields: segmentations, num_samples, kernel_widths,
    /// hide_colors, num_features); default: 12 segmentations × {300, 1000} samples × kernel
    /// widths {0.1, 0.25, 0.5} × {mean, black} × {3, 5, 8, 12} superpixels.
    #[arg(long, value_name = "FILE.json")]
    space: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Where the best parameters go, as JSON; `<same stem>.pkl` (a pickled dict, readable
    /// with `pickle.load`) and `<same stem>.trials.csv` (every trial) are written beside it.
    #[arg(long, value_name = "params.json")]
    out: PathBuf,
    /// Do not show progress bars.
    #[arg(long)]
    no_progress: bool,
}

fn load_mask(
    path: &Path,
    image_size: (u32, u32),
    model: &dyn Backbone,
    threshold: f32,
) -> CliResult<Array2<bool>> {
    let spec = model.input_spec();
    let as_rgb: image::RgbImage = if preprocess::is_npy(path) {
        let a: Array2<f32> = ndarray_npy::read_npy::<_, Array2<f32>>(path)
            .or_else(|_| {
                ndarray_npy::read_npy::<_, Array2<f64>>(path).map(|a| a.mapv(|v| v as f32))
            })
            .or_else(|_| {
                ndarray_npy::read_npy::<_, Array2<bool>>(path)
                    .map(|a| a.mapv(|v| f32::from(u8::from(v))))
            })
            .map_err(|e| {
                CliError::Msg(format!(
                    "{}: not a 2-D float or bool .npy mask: {e}",
                    path.display()
                ))
            })?;
        let (h, w) = a.dim();
        let inside = a.mapv(|v| v > threshold);
        if (w as u32, h as u32) == image_size {
            return Ok(inside);
        }
        image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            image::Rgb(
                [if inside[[y as usize, x as usize]] {
                    255
                } else {
                    0
                }; 3],
            )
        })
    } else {
        let luma = image::open(path)
            .map_err(|e| CliError::Msg(format!("{}: cannot read the mask: {e}", path.display())))?
            .to_luma8();
        let (w, h) = luma.dimensions();
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb(
                [if luma.get_pixel(x, y).0[0] > 0 {
                    255
                } else {
                    0
                }; 3],
            )
        })
    };
    let fitted = if as_rgb.dimensions() == image_size {
        as_rgb
    } else {
        preprocess::resize_and_crop(&as_rgb, spec)
    };
    if fitted.dimensions() != image_size {
        return Err(CliError::Msg(format!(
            "{}: the mask is {:?} after resizing, the image {:?}",
            path.display(),
            fitted.dimensions(),
            image_size
        )));
    }
    let (w, h) = image_size;
    Ok(Array2::from_shape_fn((h as usize, w as usize), |(y, x)| {
        fitted.get_pixel(x as u32, y as u32).0[0] >= 128
    }))
}

/// The reference mask of `image` in `masks`: same stem, `.png` or `.npy`.
fn find_mask(masks: &Path, image: &Path) -> CliResult<PathBuf> {
    let stem = file_stem(image);
    for ext in ["png", "npy", "PNG", "jpg", "bmp", "tif", "tiff"] {
        let p = masks.join(format!("{stem}.{ext}"));
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(CliError::Msg(format!(
        "no reference mask for {} in {} (looked for {stem}.png and {stem}.npy)",
        image.display(),
        masks.display()
    )))
}

fn test_world_cases(model: &dyn Backbone, n: usize) -> CliResult<Vec<SearchCase>> {
    use xai::testworld::{train::HELD_OUT_SEED_BASE, Scene, SceneConfig};
    if n == 0 {
        return Err(CliError::Msg("--scenes must be at least 1".into()));
    }
    let spec = model.input_spec();
    (0..n)
        .map(|i| {
            let scene = Scene::generate(HELD_OUT_SEED_BASE + i as u64, &SceneConfig::default())
                .map_err(|e| CliError::Msg(e.to_string()))?;
            let image = preprocess::resize_and_crop(&scene.image, spec);
            let mask_rgb =
                image::DynamicImage::ImageLuma8(scene.object_mask().to_gray_image()).to_rgb8();
            let mask = preprocess::resize_and_crop(&mask_rgb, spec);
            let reference = Array2::from_shape_fn(
                (image.height() as usize, image.width() as usize),
                |(y, x)| mask.get_pixel(x as u32, y as u32).0[0] >= 128,
            );
            Ok(SearchCase {
                name: format!("scene_{:06}", HELD_OUT_SEED_BASE + i as u64),
                image,
                reference,
                label: Some(scene.object.index()),
            })
        })
        .collect()
}

fn file_cases(
    model: &dyn Backbone,
    images: &Path,
    masks: Option<&Path>,
    threshold: f32,
) -> CliResult<Vec<SearchCase>> {
    let files = collect_images(images)?;
    let masks_dir = match masks {
        Some(m) => m.to_path_buf(),
        None => {
            let dir = if images.is_dir() {
                images
            } else {
                images.parent().unwrap_or(Path::new("."))
            };
            let guess = dir.parent().map(|p| p.join("masks"));
            match guess {
                Some(g) if g.is_dir() && dir.file_name().is_some_and(|n| n == "images") => g,
                _ => {
                    return Err(CliError::Msg(
                        "give --masks DIR with one reference mask per image (same file stem)"
                            .into(),
                    ))
                }
            }
        }
    };
    files
        .iter()
        .map(|f| {
            let image = load_picture(f, model)?;
            let mask_path = find_mask(&masks_dir, f)?;
            let reference = load_mask(&mask_path, image.dimensions(), model, threshold)?;
            Ok(SearchCase {
                name: file_stem(f),
                image,
                reference,
                label: None,
            })
        })
        .collect()
}

pub(crate) fn run_search(args: LimeSearchArgs) -> CliResult<()> {
    let strategy = match args.strategy.trim().to_ascii_lowercase().as_str() {
        "grid" => Strategy::Grid,
        "random" => Strategy::Random {
            trials: args.trials,
            seed: args.search_seed,
        },
        other => {
            return Err(CliError::Msg(format!(
                "unknown --strategy `{other}`; expected grid or random"
            )))
        }
    };
    let space: SearchSpace = match &args.space {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| CliError::io(p, e))?;
            serde_json::from_str(&text)
                .map_err(|e| CliError::Msg(format!("{}: not a search space: {e}", p.display())))?
        }
        None => SearchSpace::default(),
    };
    let model = args.model.load()?;
    let model: &dyn Backbone = model.as_ref();
    let cases = match &args.image {
        Some(images) => file_cases(model, images, args.masks.as_deref(), args.mask_threshold)?,
        None => test_world_cases(model, args.scenes)?,
    };
    let config = SearchConfig {
        strategy,
        seed: args.seed,
        batch_size: args.batch_size,
    };
    let bar = progress_bar(args.no_progress);
    bar.set_message("lime-search");
    let mut classifier = BackboneClassifier::new(model);
    let result = search::search(&cases, &mut classifier, &space, &config, &mut |p| {
        bar.set_length(p.groups as u64);
        bar.set_position(p.groups_done as u64);
    })
    .map_err(lime_err)?;
    bar.finish_and_clear();
    let best = result
        .best()
        .ok_or_else(|| CliError::Msg("the search produced no trial".into()))?;
    let mut dict = search::params_dict(best, args.seed);
    if let serde_json::Value::Object(m) = &mut dict {
        m.insert("images".into(), serde_json::json!(result.images));
        m.insert("trials".into(), serde_json::json!(result.trials.len()));
    }
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| CliError::io(parent, e))?;
    }
    let text = serde_json::to_string_pretty(&dict).map_err(|e| CliError::Msg(e.to_string()))?;
    write_atomic(&args.out, |tmp| {
        std::fs::write(tmp, text.as_bytes()).map_err(|e| CliError::io(tmp, e))
    })?;
    let pkl = args.out.with_extension("pkl");
    let bytes = xai::lime::pickle::to_pickle(&dict).map_err(lime_err)?;
    write_atomic(&pkl, |tmp| {
        std::fs::write(tmp, &bytes).map_err(|e| CliError::io(tmp, e))
    })?;
    let csv = args.out.with_extension("trials.csv");
    let mut rows = String::from(
        "rank,mean_iou,segmentation,num_samples,kernel_width,hide_color,num_features\n",
    );
    for (i, t) in result.trials.iter().enumerate() {
        let seg = serde_json::to_string(&t.params.segmentation).unwrap_or_default();
        rows.push_str(&format!(
            "{},{:.6},\"{}\",{},{},{},{}\n",
            i + 1,
            t.mean_iou,
            seg.replace('"', "\"\""),
            t.params.num_samples,
            t.params.kernel_width,
            t.params.hide_color.to_string().replace(',', " "),
            t.params.num_features
        ));
    }
    write_atomic(&csv, |tmp| {
        std::fs::write(tmp, rows.as_bytes()).map_err(|e| CliError::io(tmp, e))
    })?;
    println!(
        "best mean IoU {:.3} over {} images ({} trials): {}",
        best.mean_iou,
        cases.len(),
        result.trials.len(),
        serde_json::to_string(&best.params).unwrap_or_default()
    );
    println!(
        "{}\n{}\n{}",
        args.out.display(),
        pkl.display(),
        csv.display()
    );
    Ok(())
}
