//! ScoreCAM: channel weights from the scores of the input masked by each channel.

use candle_core::{DType, Tensor};
use ndarray::Array3;

use crate::map::interpolation_matrix;
use crate::method::{CamMethod, LayerContext, Needs};
use crate::{Error, Result};

/// Score-CAM (Wang et al., CVPR-W 2020, Eq. 6–8), as the reference computes it.
///
/// Each channel `A_k` is upsampled to the input size (bilinear, `align_corners=True`), min-max
/// normalised to a mask `N_k = (U − min U)/(max U − min U + 1e-8)` (a constant channel gives an
/// all-zero mask, never NaN), and the normalised input `X ⊙ N_k` is scored with the target.
/// The weights are the softmax of those scores over the channels; the raw map is
/// `Σ_k w_k A_k` at the layer's resolution.
///
/// Masks are built chunk by chunk on the fly (never all `K` at once) and batched across
/// channels and images, `batch_size` per forward pass (default 16, as the reference); progress
/// is reported through [`crate::Cam::on_progress`]. Channels that are zero everywhere share one
/// forward pass of the all-zero input, the input each of them would give.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_cam::{Cam, ScoreCam, Targets};
/// let model = xai_models::testing::random_resnet(
///     xai_models::ResNetConfig::resnet18().with_width(4).with_classes(10), 0, &Device::Cpu)?;
/// let x = Tensor::randn(0f32, 1.0, (1, 3, 32, 32), &Device::Cpu)?;
/// let method = ScoreCam::default().with_batch_size(32)?;
/// let map = Cam::new(&model, method)?.compute(&x, &Targets::TopClass)?.normalise();
/// assert_eq!(map.dim(), (1, 32, 32));
/// # Ok::<(), xai_cam::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ScoreCam {
    batch_size: usize,
}

impl Default for ScoreCam {
    fn default() -> Self {
        Self { batch_size: 16 }
    }
}

impl ScoreCam {
    /// Masked inputs per forward pass (default 16, as the reference).
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::param("batch_size", "must be at least 1"));
        }
        self.batch_size = batch_size;
        Ok(self)
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl CamMethod for ScoreCam {
    fn name(&self) -> &'static str {
        "scorecam"
    }

    fn needs(&self) -> Needs {
        Needs::Activations
    }

    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        let a = cx.activation;
        let (batch, k, h, w) = a.dims4()?;
        let (_, _, height, width) = cx.input.dims4()?;
        let dev = a.device();
        let dtype = a.dtype();
        // U = Ry · A_k · Rxᵀ, the align_corners=True bilinear upsampling as two matmuls.
        let ry = Tensor::from_vec(interpolation_matrix(h, height, true), (height, h), dev)?
            .to_dtype(dtype)?;
        let rxt = Tensor::from_vec(interpolation_matrix(w, width, true), (width, w), dev)?
            .to_dtype(dtype)?
            .t()?
            .contiguous()?;
        let flat = a.reshape((batch * k, h, w))?;
        // A channel that is zero everywhere (common after a ReLU) gives the all-zero mask and
        // so the all-zero input, whatever the image: score that input once per model and reuse
        // it instead of spending a forward pass per such channel. Only exact zeros qualify, so
        // the scores are the same as the reference's channel-by-channel ones.
        let peaks: Vec<f32> = flat
            .abs()?
            .flatten_from(1)?
            .max(1)?
            .to_dtype(DType::F32)?
            .to_vec1()?;
        let mut dead: Vec<(usize, usize)> = Vec::new();
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for (b, ch) in (0..batch).flat_map(|b| (0..k).map(move |ch| (b, ch))) {
            if peaks[b * k + ch] == 0.0 {
                dead.push((b, ch));
            } else {
                pairs.push((b, ch));
            }
        }
        let total = batch * k;
        let mut scores = vec![0f32; total];
        if !dead.is_empty() {
            let zero = cx.input.narrow(0, 0, 1)?.zeros_like()?;
            let out = cx.model.forward(&zero)?;
            let images: Vec<usize> = dead.iter().map(|&(b, _)| b).collect();
            let rows = Tensor::zeros(images.len(), DType::U32, dev)?;
            let s = cx
                .targets
                .score_rows(&images, &out.index_select(&rows, 0)?)?;
            for (&(b, ch), score) in dead.iter().zip(s) {
                scores[b * k + ch] = score;
            }
        }
        let mut done = dead.len();
        cx.report(self.name(), done, total);
        for chunk in pairs.chunks(self.batch_size) {
            let n = chunk.len();
            let images: Vec<usize> = chunk.iter().map(|&(b, _)| b).collect();
            let rows = Tensor::from_iter(chunk.iter().map(|&(b, ch)| (b * k + ch) as u32), dev)?;
            let maps = flat.index_select(&rows, 0)?; // (n, h, w)
            let up = ry.broadcast_matmul(&maps.broadcast_matmul(&rxt)?)?; // (n, H, W)
            let lin = up.reshape((n, height * width))?;
            let min = lin.min_keepdim(1)?;
            let max = lin.max_keepdim(1)?;
            let range = (max - &min)?.affine(1.0, 1e-8)?;
            let masks = lin.broadcast_sub(&min)?.broadcast_div(&range)?;
            let masks = masks.reshape((n, 1, height, width))?;
            let idx = Tensor::from_iter(images.iter().map(|&b| b as u32), dev)?;
            let masked = cx.input.index_select(&idx, 0)?.broadcast_mul(&masks)?;
            let out = cx.model.forward(&masked)?;
            let s = cx.targets.score_rows(&images, &out)?;
            for (&(b, ch), score) in chunk.iter().zip(s) {
                scores[b * k + ch] = score;
            }
            done += n;
            cx.report(self.name(), done, total);
        }
        // Softmax over the channels of each image, in f32.
        let mut weights = Vec::with_capacity(total);
        for b in 0..batch {
            let row = &scores[b * k..(b + 1) * k];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = row.iter().map(|&s| (s - max).exp()).collect();
            let sum: f32 = exps.iter().sum();
            weights.extend(exps.iter().map(|e| e / sum));
        }
        let weights = Tensor::from_vec(weights, (batch, k), dev)?.to_dtype(DType::F32)?;
        cx.weighted_map(&weights.to_dtype(dtype)?)
    }
}
