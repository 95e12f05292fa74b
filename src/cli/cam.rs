//! `xai cam`: class activation maps for images, written as `.npy`, overlay and greyscale PNG.

use std::path::{Path, PathBuf};

use clap::Args;
use xai::cam::{render, Cam, Method, Targets};
use xai::models::candle_core::{Device, Tensor};
use xai::models::{preprocess, Backbone, InputSpec};

use super::{
    collect_images, file_stem, shard_images, write_atomic, CliError, CliResult, ModelArgs,
};

#[derive(Debug, Args)]
pub(crate) struct CamArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// CAM method: gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam, eigengradcam,
    /// ablationcam, scorecam, or `all`. Several can be given, separated by commas.
    #[arg(long, value_name = "NAME|all", value_delimiter = ',', required = true)]
    method: Vec<String>,
    /// Image file (any format the `image` crate reads, or a preprocessed (3, H, W) float
    /// `.npy`), or a folder of them (searched recursively).
    #[arg(long, value_name = "IMG|DIR")]
    image: PathBuf,
    /// Target layer; repeat for several (their maps are averaged, as pytorch-grad-cam does).
    /// Default: the model's last spatial stage (`layer4` for ResNets).
    #[arg(long = "layer", value_name = "NAME")]
    layers: Vec<String>,
    /// Class to explain (its logit). Default: each image's top-1 class.
    #[arg(long, value_name = "N")]
    class: Option<usize>,
    /// Output folder: per image and method, `<stem>.<method>.npy` (the normalised H×W map,
    /// float32), `<stem>.<method>.png` (jet overlay) and `<stem>.<method>.gray.png`.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Process only shard i of n (0 ≤ i < n): image k of the sorted list goes to shard
    /// k mod n. For Slurm job arrays ($SLURM_ARRAY_TASK_ID) or Kubernetes Indexed Jobs
    /// ($JOB_COMPLETION_INDEX); outputs are per image, so shards merge by copying.
    #[arg(long, value_name = "i/n")]
    shard: Option<String>,
    /// Model evaluations per forward pass for ablationcam and scorecam (defaults: 32 and 16,
    /// as pytorch-grad-cam).
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// pytorch-grad-cam's eigen_smooth: the first principal component of the weighted
    /// activations instead of their sum.
    #[arg(long)]
    eigen_smooth: bool,
    /// pytorch-grad-cam's aug_smooth: average the maps of 6 flipped/scaled inputs.
    #[arg(long)]
    aug_smooth: bool,
    /// Do not show progress bars (they are only drawn on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

fn cam_err(e: xai::cam::Error) -> CliError {
    match e {
        xai::cam::Error::Model(m) => CliError::Model(m),
        other => CliError::Msg(other.to_string()),
    }
}

/// Parses `i/n` with `0 ≤ i < n`.
pub(super) fn parse_shard(s: &str) -> CliResult<(usize, usize)> {
    let bad = || {
        CliError::Msg(format!(
            "invalid --shard `{s}`: expected i/n with 0 <= i < n, e.g. 0/4"
        ))
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i: usize = i.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

fn parse_methods(names: &[String]) -> CliResult<Vec<Method>> {
    let mut out = Vec::new();
    for name in names {
        if name.trim().eq_ignore_ascii_case("all") {
            out.extend(Method::ALL);
            continue;
        }
        out.push(
            name.parse::<Method>()
                .map_err(|e| CliError::Msg(format!("{e}, or `all`")))?,
        );
    }
    let mut seen = Vec::new();
    out.retain(|m| {
        let new = !seen.contains(m);
        seen.push(*m);
        new
    });
    Ok(out)
}

/// The model input and the picture the overlay is drawn on (the cropped image, or for a
/// `.npy` input the tensor un-normalised).
fn load(path: &Path, spec: &InputSpec, device: &Device) -> CliResult<(Tensor, image::RgbImage)> {
    if preprocess::is_npy(path) {
        let x = preprocess::load_npy_chw(path, device)?;
        let x = if x.rank() == 4 { x.squeeze(0)? } else { x };
        let img = preprocess::to_image(&x, spec)?;
        Ok((x, img))
    } else {
        let img = preprocess::resize_and_crop(&preprocess::load_image(path)?, spec);
        let x = preprocess::to_tensor(&img, spec, device)?;
        Ok((x, img))
    }
}

pub(super) fn save_png(
    path: &Path,
    save: impl FnOnce(&Path) -> image::ImageResult<()>,
) -> CliResult<()> {
    write_atomic(path, |tmp| {
        save(tmp).map_err(|e| CliError::Msg(format!("{}: {e}", path.display())))
    })
}

pub(super) fn progress_bar(hidden: bool) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

pub(crate) fn run(args: CamArgs) -> CliResult<()> {
    let methods = parse_methods(&args.method)?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if args.batch_size == Some(0) {
        return Err(CliError::Msg("--batch-size must be at least 1".into()));
    }
    let images = shard_images(collect_images(&args.image)?, shard);
    if let (true, Some((i, n))) = (images.is_empty(), shard) {
        eprintln!("shard {i}/{n}: no images to process");
        return Ok(());
    }
    let model = args.model.load()?;
    let model: &dyn Backbone = model.as_ref();
    let bar = progress_bar(args.no_progress);
    let bar_ref = &bar;
    // Check the layers (and the methods' settings) once, before any work.
    let drivers = methods
        .iter()
        .map(|m| {
            let mut cam = Cam::new(&model, m.build(args.batch_size).map_err(cam_err)?)
                .map_err(cam_err)?
                .with_eigen_smooth(args.eigen_smooth)
                .on_progress(move |p| {
                    bar_ref.set_length(p.total as u64);
                    bar_ref.set_position(p.done as u64);
                });
            if !args.layers.is_empty() {
                cam = cam.with_layers(&args.layers).map_err(cam_err)?;
            }
            Ok(cam)
        })
        .collect::<CliResult<Vec<_>>>()?;
    std::fs::create_dir_all(&args.out).map_err(|e| CliError::io(&args.out, e))?;
    let targets = match args.class {
        Some(c) => Targets::Class(c),
        None => Targets::TopClass,
    };
    for path in &images {
        let (x, picture) = load(path, model.input_spec(), model.device())?;
        let x = x.unsqueeze(0)?;
        let stem = file_stem(path);
        for (method, driver) in methods.iter().zip(&drivers) {
            bar.set_message(format!("{stem} {method}"));
            bar.set_position(0);
            let map = if args.aug_smooth {
                driver.compute_aug_smooth(&x, &targets).map_err(cam_err)?
            } else {
                let result = driver.compute(&x, &targets).map_err(cam_err)?;
                if let Some(&c) = result.classes.as_ref().and_then(|c| c.first()) {
                    bar.suspend(|| {
                        eprintln!(
                            "{}: {method} explains class {c} ({})",
                            path.display(),
                            model.labels().name(c)
                        )
                    });
                }
                result.normalise()
            };
            let map = map.index_axis(ndarray::Axis(0), 0).to_owned();
            if map.iter().any(|v| v.is_nan()) {
                return Err(CliError::Msg(format!(
                    "{}: the {method} map is not finite (NaN); check the input and the weights",
                    path.display()
                )));
            }
            let npy = args.out.join(format!("{stem}.{method}.npy"));
            write_atomic(&npy, |tmp| {
                render::write_npy(tmp, map.view()).map_err(cam_err)
            })?;
            let overlay =
                render::overlay(&picture, map.view(), &Default::default()).map_err(cam_err)?;
            let png = args.out.join(format!("{stem}.{method}.png"));
            save_png(&png, |tmp| {
                overlay.save_with_format(tmp, image::ImageFormat::Png)
            })?;
            let gray = render::gray_image(map.view());
            let gray_path = args.out.join(format!("{stem}.{method}.gray.png"));
            save_png(&gray_path, |tmp| {
                gray.save_with_format(tmp, image::ImageFormat::Png)
            })?;
            bar.suspend(|| println!("{}", npy.display()));
        }
    }
    bar.finish_and_clear();
    Ok(())
}
