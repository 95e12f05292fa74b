//! Command-line interface: argument definitions and dispatch.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use xai::models::candle_core::Device;

mod cam;
mod classify;
mod compare;
mod dissect;
mod dissect_compare;
mod lime;
mod preprocess;
mod segment;
mod segment_params;
mod testworld;

/// Explainability for vision models: classify, explain (CAM, LIME), dissect and compare.
///
/// Every command runs offline. With no `--arch`/`--weights` the model built into the binary
/// is used; real weights come from `--weights FILE`, `$XAI_WEIGHTS_<ARCH>`,
/// `$XAI_WEIGHTS_DIR`, or the local Hugging Face cache.
#[derive(Debug, Parser)]
#[command(name = "xai", version, about, long_about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Class activation maps (Grad-CAM family) of images: .npy maps, overlays, greyscale PNGs.
    Cam(cam::CamArgs),
    /// Print the top classes of a model for an image (or a folder of images).
    Classify(classify::ClassifyArgs),
    /// Compare explanations of the same images (CAM methods, LIME): pairwise IoU, Dice and
    /// rank correlation, deletion/insertion, localisation; CSV, Markdown and an HTML report.
    Compare(Box<compare::CompareArgs>),
    /// Label the units of a model's layers with concepts (CLIP-Dissect's similarity
    /// functions; offline on the test world's ground-truth concepts): descriptions.csv, JSON.
    Dissect(Box<dissect::DissectArgs>),
    /// Compare the dissections of two models (`xai dissect` output folders): dominant concepts
    /// per layer side by side, concepts unique to each, per-layer overlap; CSV, charts, reports.
    DissectCompare(dissect_compare::DissectCompareArgs),
    /// LIME explanations of images: superpixel weights (.json), masks (.npy) and pictures.
    Lime(Box<lime::LimeArgs>),
    /// Search LIME's settings for the masks that best match reference masks (mean IoU); writes
    /// the best parameters as JSON and as a Python pickle.
    LimeSearch(lime::LimeSearchArgs),
    /// Write the preprocessed model input of an image as a (3, H, W) float32 `.npy`.
    Preprocess(preprocess::PreprocessArgs),
    /// Superpixels of an image (quickshift, SLIC, felzenszwalb) as an H×W int32 `.npy`, with
    /// scikit-image's semantics; optionally the boundaries as a PNG.
    Segment(segment::SegmentArgs),
    /// The procedural test world: generate scenes, train and evaluate its two models.
    Testworld(testworld::TestWorldArgs),
}

/// Which model to run: shared by every subcommand.
#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    /// Architecture: resnet18, resnet34, resnet50, resnet101, resnet152, or tiny-resnet18 (the
    /// built-in model). Detected from the weights when only --weights is given.
    #[arg(long)]
    arch: Option<String>,
    /// Weights file: .safetensors, or a PyTorch .pth/.pth.tar checkpoint (torchvision or
    /// Places365 format). Without it: $XAI_WEIGHTS_<ARCH>, $XAI_WEIGHTS_DIR, the hf cache.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Class names: a text file with one name per line, or Places365's categories file.
    /// Default: ImageNet's for 1000-class models, `class N` otherwise.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Device to run on (cuda and metal need xai built with that feature).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
    Metal,
}

/// The error type of the CLI: a library error, or a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Model(#[from] xai::models::Error),
    #[error("{0}")]
    Msg(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) type CliResult<T> = Result<T, CliError>;

impl CliError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<xai::models::candle_core::Error> for CliError {
    fn from(e: xai::models::candle_core::Error) -> Self {
        Self::Model(e.into())
    }
}

impl ModelArgs {
    pub(crate) fn device(&self) -> CliResult<Device> {
        let dev = match self.device {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::new_cuda(0)?,
            DeviceArg::Metal => Device::new_metal(0)?,
        };
        Ok(dev)
    }

    pub(crate) fn load(&self) -> CliResult<Box<dyn xai::models::Backbone>> {
        let device = self.device()?;
        let model = xai::zoo::load(self.arch.as_deref(), self.weights.as_deref(), &device)?;
        match &self.labels {
            None => Ok(model),
            Some(path) => {
                let labels = xai::models::Labels::from_file(path)?;
                Ok(Box::new(xai::zoo::Relabelled::new(model, labels)?))
            }
        }
    }
}

/// The images of shard `i` of `n` (image k of the sorted list goes to shard k mod n), or all.
pub(crate) fn shard_images(images: Vec<PathBuf>, shard: Option<(usize, usize)>) -> Vec<PathBuf> {
    match shard {
        Some((i, n)) => images
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % n == i)
            .map(|(_, p)| p)
            .collect(),
        None => images,
    }
}

/// The file name without its extension, the stem of every output file of an input.
pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

/// Image files under `path` (itself if it is a file), sorted, recursing into folders.
pub(crate) fn collect_images(path: &Path) -> CliResult<Vec<PathBuf>> {
    const EXTS: [&str; 11] = [
        "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "ppm", "pgm", "npy",
    ];
    let meta = std::fs::metadata(path).map_err(|e| CliError::io(path, e))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| CliError::io(&dir, e))? {
            let p = entry.map_err(|e| CliError::io(&dir, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTS.contains(&e.to_ascii_lowercase().as_str()))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(CliError::Msg(format!(
            "{} holds no images ({})",
            path.display(),
            EXTS.join(", ")
        )));
    }
    Ok(out)
}

/// Writes `bytes` to `path` atomically (a temporary file in the same folder, then a rename).
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> CliResult<()>,
) -> CliResult<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| CliError::io(path, e))
}

pub(crate) fn run(cli: Cli) -> CliResult<()> {
    match cli.command {
        Command::Cam(a) => cam::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Compare(a) => compare::run(*a),
        Command::Dissect(a) => dissect::run(*a),
        Command::DissectCompare(a) => dissect_compare::run(a),
        Command::Lime(a) => lime::run(*a),
        Command::LimeSearch(a) => lime::run_search(a),
        Command::Preprocess(a) => preprocess::run(a),
        Command::Segment(a) => segment::run(a),
        Command::Testworld(a) => testworld::run(a),
    }
}
