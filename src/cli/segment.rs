//! `xai segment`: superpixels of an image (quickshift, SLIC, felzenszwalb) as an H×W int32
//! `.npy`, with scikit-image's semantics, and optionally the boundaries drawn as a PNG.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ndarray_npy::WriteNpyExt;
use xai::lime::boundaries::{mark_boundaries, BoundaryMode, YELLOW};
use xai::lime::segment::{
    image_to_float, Felzenszwalb, Quickshift, SegmentMethod, Segmenter, Slic,
};

use super::{write_atomic, CliError, CliResult};

#[derive(Debug, Args)]
pub(crate) struct SegmentArgs {
    /// Segmentation method.
    #[arg(long, value_enum)]
    method: MethodArg,
    /// Image file (any format the `image` crate reads; grey and RGBA become RGB, the EXIF
    /// orientation is applied). It is segmented at its own size.
    #[arg(long, value_name = "IMG")]
    image: PathBuf,
    /// Output `.npy` file: the (H, W) int32 label map, numbered as scikit-image numbers it.
    #[arg(long, value_name = "FILE.npy")]
    out: PathBuf,
    /// Also write the image with the segment boundaries drawn in yellow (scikit-image's
    /// mark_boundaries, mode outer) as a PNG.
    #[arg(long, value_name = "FILE.png")]
    boundaries: Option<PathBuf>,

    /// quickshift: width of the density kernel [default: 4, LIME's].
    #[arg(long, help_heading = "quickshift")]
    kernel_size: Option<f64>,
    /// quickshift: links longer than this are cut [default: 200, LIME's].
    #[arg(long, help_heading = "quickshift")]
    max_dist: Option<f64>,
    /// quickshift: weight of colour against position [default: 0.2, LIME's].
    #[arg(long, help_heading = "quickshift")]
    ratio: Option<f64>,
    /// quickshift: seed of the tie-breaking noise [default: 42]. The noise is our own, so a
    /// rare tie can resolve differently from scikit-image.
    #[arg(long, help_heading = "quickshift")]
    seed: Option<u64>,

    /// σ of the Gaussian pre-smoothing [default: 0 for quickshift and slic, 0.8 for
    /// felzenszwalb].
    #[arg(long)]
    sigma: Option<f64>,

    /// slic: approximate number of segments [default: 100].
    #[arg(long, help_heading = "slic")]
    n_segments: Option<usize>,
    /// slic: balance of colour and space; larger is squarer [default: 10].
    #[arg(long, help_heading = "slic")]
    compactness: Option<f64>,
    /// slic: k-means iterations [default: 10].
    #[arg(long, help_heading = "slic")]
    max_num_iter: Option<usize>,
    /// slic: the first label, 0 or 1 [default: 1].
    #[arg(long, help_heading = "slic")]
    start_label: Option<i32>,
    /// slic: keep disconnected and tiny pieces as they are.
    #[arg(long, help_heading = "slic")]
    no_enforce_connectivity: bool,
    /// slic: SLIC-zero, an adaptive colour weight per segment.
    #[arg(long, help_heading = "slic")]
    slic_zero: bool,

    /// felzenszwalb: observation scale; larger gives larger segments [default: 1].
    #[arg(long, help_heading = "felzenszwalb")]
    scale: Option<f64>,
    /// felzenszwalb: minimum segment size in pixels [default: 20].
    #[arg(long, help_heading = "felzenszwalb")]
    min_size: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MethodArg {
    Quickshift,
    Slic,
    Felzenszwalb,
}

impl SegmentArgs {
    /// The segmenter with the flags applied; a flag of another method is an error.
    fn method(&self) -> CliResult<SegmentMethod> {
        let given = |name: &'static str, set: bool| set.then_some(name);
        let quickshift_flags = [
            given("--kernel-size", self.kernel_size.is_some()),
            given("--max-dist", self.max_dist.is_some()),
            given("--ratio", self.ratio.is_some()),
            given("--seed", self.seed.is_some()),
        ];
        let slic_flags = [
            given("--n-segments", self.n_segments.is_some()),
            given("--compactness", self.compactness.is_some()),
            given("--max-num-iter", self.max_num_iter.is_some()),
            given("--start-label", self.start_label.is_some()),
            given("--no-enforce-connectivity", self.no_enforce_connectivity),
            given("--slic-zero", self.slic_zero),
        ];
        let felzenszwalb_flags = [
            given("--scale", self.scale.is_some()),
            given("--min-size", self.min_size.is_some()),
        ];
        let (name, others): (&str, Vec<Option<&str>>) = match self.method {
            MethodArg::Quickshift => (
                "quickshift",
                slic_flags
                    .iter()
                    .chain(&felzenszwalb_flags)
                    .copied()
                    .collect(),
            ),
            MethodArg::Slic => (
                "slic",
                quickshift_flags
                    .iter()
                    .chain(&felzenszwalb_flags)
                    .copied()
                    .collect(),
            ),
            MethodArg::Felzenszwalb => (
                "felzenszwalb",
                quickshift_flags
                    .iter()
                    .chain(&slic_flags)
                    .copied()
                    .collect(),
            ),
        };
        if let Some(flag) = others.into_iter().flatten().next() {
            return Err(CliError::Msg(format!(
                "{flag} does not apply to --method {name}"
            )));
        }
        let method = match self.method {
            MethodArg::Quickshift => {
                let d = Quickshift::default();
                SegmentMethod::Quickshift(Quickshift {
                    kernel_size: self.kernel_size.unwrap_or(d.kernel_size),
                    max_dist: self.max_dist.unwrap_or(d.max_dist),
                    ratio: self.ratio.unwrap_or(d.ratio),
                    sigma: self.sigma.unwrap_or(d.sigma),
                    seed: self.seed.unwrap_or(d.seed),
                    ..d
                })
            }
            MethodArg::Slic => {
                let d = Slic::default();
                SegmentMethod::Slic(Slic {
                    n_segments: self.n_segments.unwrap_or(d.n_segments),
                    compactness: self.compactness.unwrap_or(d.compactness),
                    max_num_iter: self.max_num_iter.unwrap_or(d.max_num_iter),
                    sigma: self.sigma.unwrap_or(d.sigma),
                    start_label: self.start_label.unwrap_or(d.start_label),
                    enforce_connectivity: !self.no_enforce_connectivity,
                    slic_zero: self.slic_zero,
                    ..d
                })
            }
            MethodArg::Felzenszwalb => {
                let d = Felzenszwalb::default();
                SegmentMethod::Felzenszwalb(Felzenszwalb {
                    scale: self.scale.unwrap_or(d.scale),
                    sigma: self.sigma.unwrap_or(d.sigma),
                    min_size: self.min_size.unwrap_or(d.min_size),
                })
            }
        };
        method.validate().map_err(lime_err)?;
        Ok(method)
    }
}

fn lime_err(e: xai::lime::Error) -> CliError {
    CliError::Msg(e.to_string())
}

pub(crate) fn run(args: SegmentArgs) -> CliResult<()> {
    let method = args.method()?;
    let rgb = xai::models::preprocess::load_image(&args.image)?;
    let image = image_to_float(&rgb);
    let labels = method.segment(image.view()).map_err(lime_err)?;

    write_atomic(&args.out, |tmp| {
        let f = std::fs::File::create(tmp).map_err(|e| CliError::io(tmp, e))?;
        labels
            .write_npy(std::io::BufWriter::new(f))
            .map_err(|e| CliError::Msg(format!("{}: {e}", tmp.display())))
    })?;
    if let Some(path) = &args.boundaries {
        let marked = mark_boundaries(
            image.view(),
            labels.view(),
            YELLOW,
            None,
            BoundaryMode::Outer,
        )
        .map_err(lime_err)?;
        let (h, w, _) = marked.dim();
        let png = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let px = |c: usize| {
                (marked[[y as usize, x as usize, c]] * 255.0)
                    .round()
                    .clamp(0.0, 255.0) as u8
            };
            image::Rgb([px(0), px(1), px(2)])
        });
        write_atomic(path, |tmp| {
            png.save_with_format(tmp, image::ImageFormat::Png)
                .map_err(|e| CliError::Msg(format!("{}: {e}", tmp.display())))
        })?;
    }
    let mut distinct: Vec<i32> = labels.iter().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    println!(
        "{} segments ({}) in {}×{} {}",
        distinct.len(),
        method.name(),
        labels.ncols(),
        labels.nrows(),
        args.image.display()
    );
    eprintln!("wrote {}", args.out.display());
    if let Some(path) = &args.boundaries {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
