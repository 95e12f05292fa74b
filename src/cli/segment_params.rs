//! The parameters of the segmenters as command-line flags, shared by `xai segment` (which
//! names the method with `--method`) and `xai lime` (`--segmenter`).

use clap::Args;
use xai::lime::{Felzenszwalb, Quickshift, SegmentMethod, Slic};

use super::{CliError, CliResult};

/// Each method's parameters; unset ones take the method's defaults (LIME's for quickshift:
/// 4/200/0.2; scikit-image's for slic and felzenszwalb). A flag of another method is an error.
#[derive(Debug, Args, Clone)]
pub(crate) struct SegmentParams {
    /// quickshift: width of the density kernel [default: 4, LIME's].
    #[arg(long, help_heading = "quickshift")]
    kernel_size: Option<f64>,
    /// quickshift: links longer than this are cut [default: 200, LIME's].
    #[arg(long, help_heading = "quickshift")]
    max_dist: Option<f64>,
    /// quickshift: weight of colour against position [default: 0.2, LIME's].
    #[arg(long, help_heading = "quickshift")]
    ratio: Option<f64>,

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

impl SegmentParams {
    /// The segmenter `name` (quickshift, slic, felzenszwalb; chosen with the flag `choice`)
    /// with these parameters; `seed` seeds quickshift's tie-breaking noise.
    pub(crate) fn method(
        &self,
        name: &str,
        choice: &str,
        seed: Option<u64>,
    ) -> CliResult<SegmentMethod> {
        let name = name.trim().to_ascii_lowercase();
        let quickshift_flags = [
            ("--kernel-size", self.kernel_size.is_some()),
            ("--max-dist", self.max_dist.is_some()),
            ("--ratio", self.ratio.is_some()),
        ];
        let slic_flags = [
            ("--n-segments", self.n_segments.is_some()),
            ("--compactness", self.compactness.is_some()),
            ("--max-num-iter", self.max_num_iter.is_some()),
            ("--start-label", self.start_label.is_some()),
            ("--no-enforce-connectivity", self.no_enforce_connectivity),
            ("--slic-zero", self.slic_zero),
        ];
        let felzenszwalb_flags = [
            ("--scale", self.scale.is_some()),
            ("--min-size", self.min_size.is_some()),
        ];
        let foreign: Vec<(&str, bool)> = match name.as_str() {
            "quickshift" => slic_flags.iter().chain(&felzenszwalb_flags).copied().collect(),
            "slic" => quickshift_flags.iter().chain(&felzenszwalb_flags).copied().collect(),
            "felzenszwalb" => quickshift_flags.iter().chain(&slic_flags).copied().collect(),
            other => {
                return Err(CliError::Msg(format!(
                    "unknown segmenter `{other}` for {choice}; expected quickshift, slic or felzenszwalb"
                )))
            }
        };
        if let Some((flag, _)) = foreign.iter().find(|(_, set)| *set) {
            return Err(CliError::Msg(format!(
                "{flag} does not apply to {choice} {name}"
            )));
        }
        let method = match name.as_str() {
            "quickshift" => {
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
            _ => {
                let d = Felzenszwalb::default();
                SegmentMethod::Felzenszwalb(Felzenszwalb {
                    scale: self.scale.unwrap_or(d.scale),
                    sigma: self.sigma.unwrap_or(d.sigma),
                    min_size: self.min_size.unwrap_or(d.min_size),
                })
            }
        };
        method
            .validate()
            .map_err(|e| CliError::Msg(e.to_string()))?;
        Ok(method)
    }
}
