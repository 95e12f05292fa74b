//! Segmenter choice and parameters as command-line flags, shared by the commands that
//! segment images.

use clap::Args;
use xai::lime::{Felzenszwalb, Quickshift, SegmentMethod, Slic};

use super::{CliError, CliResult};

/// `--segmenter NAME` and the parameters of each method; unset parameters take the method's
/// defaults (LIME's for quickshift: 4/200/0.2; scikit-image's for slic and felzenszwalb).
#[derive(Debug, Args, Clone)]
pub(crate) struct SegmentParams {
    /// Superpixel method: quickshift, slic or felzenszwalb.
    #[arg(long, default_value = "quickshift", value_name = "NAME")]
    pub(crate) segmenter: String,
    /// quickshift: width of the density kernel (default 4).
    #[arg(long)]
    pub(crate) kernel_size: Option<f64>,
    /// quickshift: links longer than this are cut (default 200).
    #[arg(long)]
    pub(crate) max_dist: Option<f64>,
    /// quickshift: colour weight against position (default 0.2).
    #[arg(long)]
    pub(crate) ratio: Option<f64>,
    /// Gaussian smoothing σ before segmenting (defaults: quickshift 0, slic 0,
    /// felzenszwalb 0.8).
    #[arg(long)]
    pub(crate) sigma: Option<f64>,
    /// slic: approximate number of segments (default 100).
    #[arg(long)]
    pub(crate) n_segments: Option<usize>,
    /// slic: colour against space balance (default 10).
    #[arg(long)]
    pub(crate) compactness: Option<f64>,
    /// slic: k-means iterations (default 10).
    #[arg(long)]
    pub(crate) max_num_iter: Option<usize>,
    /// slic: first label (default 1).
    #[arg(long)]
    pub(crate) start_label: Option<i32>,
    /// slic: keep disconnected segments.
    #[arg(long)]
    pub(crate) no_enforce_connectivity: bool,
    /// felzenszwalb: higher means larger segments (default 1).
    #[arg(long)]
    pub(crate) scale: Option<f64>,
    /// felzenszwalb: minimum segment size in pixels (default 20).
    #[arg(long)]
    pub(crate) min_size: Option<usize>,
}

impl SegmentParams {
    /// The segmenter these flags describe; `seed` seeds quickshift's tie-breaking noise.
    pub(crate) fn method(&self, seed: Option<u64>) -> CliResult<Box<SegmentMethod>> {
        let name = self.segmenter.trim().to_ascii_lowercase();
        let used = |flags: &[(&str, bool)]| -> CliResult<()> {
            if let Some((flag, _)) = flags.iter().find(|(_, set)| *set) {
                return Err(CliError::Msg(format!(
                    "--{flag} does not apply to --segmenter {name}"
                )));
            }
            Ok(())
        };
        let method = match name.as_str() {
            "quickshift" => {
                used(&[
                    ("n-segments", self.n_segments.is_some()),
                    ("compactness", self.compactness.is_some()),
                    ("max-num-iter", self.max_num_iter.is_some()),
                    ("start-label", self.start_label.is_some()),
                    ("no-enforce-connectivity", self.no_enforce_connectivity),
                    ("scale", self.scale.is_some()),
                    ("min-size", self.min_size.is_some()),
                ])?;
                let d = Quickshift::default();
                SegmentMethod::Quickshift(Quickshift {
                    kernel_size: self.kernel_size.unwrap_or(d.kernel_size),
                    max_dist: self.max_dist.unwrap_or(d.max_dist),
                    ratio: self.ratio.unwrap_or(d.ratio),
                    sigma: self.sigma.unwrap_or(d.sigma),
                    seed: seed.unwrap_or(d.seed),
                    ..d
                })
            }
            "slic" => {
                used(&[
                    ("kernel-size", self.kernel_size.is_some()),
                    ("max-dist", self.max_dist.is_some()),
                    ("ratio", self.ratio.is_some()),
                    ("scale", self.scale.is_some()),
                    ("min-size", self.min_size.is_some()),
                ])?;
                let d = Slic::default();
                SegmentMethod::Slic(Slic {
                    n_segments: self.n_segments.unwrap_or(d.n_segments),
                    compactness: self.compactness.unwrap_or(d.compactness),
                    max_num_iter: self.max_num_iter.unwrap_or(d.max_num_iter),
                    sigma: self.sigma.unwrap_or(d.sigma),
                    start_label: self.start_label.unwrap_or(d.start_label),
                    enforce_connectivity: !self.no_enforce_connectivity,
                    ..d
                })
            }
            "felzenszwalb" => {
                used(&[
                    ("kernel-size", self.kernel_size.is_some()),
                    ("max-dist", self.max_dist.is_some()),
                    ("ratio", self.ratio.is_some()),
                    ("n-segments", self.n_segments.is_some()),
                    ("compactness", self.compactness.is_some()),
                    ("max-num-iter", self.max_num_iter.is_some()),
                    ("start-label", self.start_label.is_some()),
                    ("no-enforce-connectivity", self.no_enforce_connectivity),
                ])?;
                let d = Felzenszwalb::default();
                SegmentMethod::Felzenszwalb(Felzenszwalb {
                    scale: self.scale.unwrap_or(d.scale),
                    sigma: self.sigma.unwrap_or(d.sigma),
                    min_size: self.min_size.unwrap_or(d.min_size),
                })
            }
            other => {
                return Err(CliError::Msg(format!(
                    "unknown segmenter `{other}`; expected quickshift, slic or felzenszwalb"
                )))
            }
        };
        method
            .validate()
            .map_err(|e| CliError::Msg(e.to_string()))?;
        Ok(Box::new(method))
    }
}
