//! `xai segment`: superpixels of an image (quickshift, SLIC, felzenszwalb) as an H×W int32
//! `.npy`, with scikit-image's semantics, and optionally the boundaries drawn as a PNG.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ndarray_npy::WriteNpyExt;
use xai::lime::boundaries::{mark_boundaries, BoundaryMode, YELLOW};
use xai::lime::segment::{image_to_float, SegmentMethod, Segmenter};

use super::segment_params::SegmentParams;
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

    /// quickshift: seed of the tie-breaking noise, drawn as NumPy's default_rng(seed)
    /// [default: 42, scikit-image's].
    #[arg(long, help_heading = "quickshift")]
    seed: Option<u64>,

    #[command(flatten)]
    params: SegmentParams,
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
        let name = match self.method {
            MethodArg::Quickshift => "quickshift",
            MethodArg::Slic => "slic",
            MethodArg::Felzenszwalb => "felzenszwalb",
        };
        if self.seed.is_some() && self.method != MethodArg::Quickshift {
            return Err(CliError::Msg(format!(
                "--seed does not apply to --method {name}"
            )));
        }
        self.params.method(name, "--method", self.seed)
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
