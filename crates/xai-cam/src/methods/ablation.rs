//! AblationCAM: channel weights from the drop in score when a channel is removed.

use candle_core::{DType, Tensor};
use ndarray::Array3;

use crate::method::{to_array4, CamMethod, LayerContext, Needs};
use crate::{Error, Result};

/// How AblationCAM turns the ablated scores `s_bk` into channel weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AblationWeights {
    /// The reference's `w_bk = (y_b − s_bk) / y_b`. After normalisation the division changes
    /// nothing when `y_b > 0`, but it inverts the map when `y_b < 0` and gives inf/NaN at 0.
    #[default]
    Relative,
    /// `w_bk = y_b − s_bk`: the same map when `y_b > 0`, and a meaningful one otherwise.
    Difference,
}

/// AblationCAM (Desai & Ramaswamy, WACV 2020, Eq. 3): `w_k = (y − y_k) / y`, where `y_k` is
/// the target score with channel `k` of the target layer ablated.
///
/// Only the part of the network **after** the target layer is run, on batches of ablated
/// copies of the cached activation (`forward_from`), batched across channels and images: the
/// layers before the target are never run again. The reference runs the whole model per
/// batch of channels, one image at a time.
///
/// The ablation value follows the reference: 0 when the image's activation has minimum 0
/// (always so after a ReLU); otherwise the reference's cascading value `m − (i+1)·1e7`, with
/// `m` the activation's minimum and `i` the channel's position in its chunk of `batch_size`
/// channels (computed as the reference does, in f32).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_cam::{AblationCam, Cam, Targets};
/// let model = xai_models::testing::random_resnet(
///     xai_models::ResNetConfig::resnet18().with_width(4).with_classes(10), 0, &Device::Cpu)?;
/// let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu)?;
/// let method = AblationCam::default().with_batch_size(64)?;
/// let map = Cam::new(&model, method)?.compute(&x, &Targets::Class(3))?.normalise();
/// assert_eq!(map.dim(), (2, 64, 64));
/// # Ok::<(), xai_cam::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AblationCam {
    batch_size: usize,
    weights: AblationWeights,
}

impl Default for AblationCam {
    fn default() -> Self {
        Self {
            batch_size: 32,
            weights: AblationWeights::Relative,
        }
    }
}

impl AblationCam {
    /// Ablated copies per forward pass (default 32, as the reference).
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::param("batch_size", "must be at least 1"));
        }
        self.batch_size = batch_size;
        Ok(self)
    }

    /// How scores become weights (default: the reference's [`AblationWeights::Relative`]).
    pub fn with_weights(mut self, weights: AblationWeights) -> Self {
        self.weights = weights;
        self
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl CamMethod for AblationCam {
    fn name(&self) -> &'static str {
        "ablationcam"
    }

    fn needs(&self) -> Needs {
        Needs::Activations
    }

    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        let a = cx.activation;
        let (batch, k, _, _) = a.dims4()?;
        let dev = a.device();
        let original = cx
            .targets
            .score_batch(cx.output)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        // Per-image ablation value (see the type's docs).
        let host = to_array4(a)?;
        let mins: Vec<f32> = (0..batch)
            .map(|b| {
                host.index_axis(ndarray::Axis(0), b)
                    .iter()
                    .copied()
                    .fold(f32::INFINITY, f32::min)
            })
            .collect();
        let value = |b: usize, ch: usize| -> f32 {
            let m = mins[b];
            if m == 0.0 {
                return 0.0;
            }
            let mut v = m;
            for _ in 0..=(ch % self.batch_size) {
                v -= 1e7f32;
            }
            v
        };
        let pairs: Vec<(usize, usize)> = (0..batch)
            .flat_map(|b| (0..k).map(move |ch| (b, ch)))
            .collect();
        let total = pairs.len();
        let mut scores = vec![0f32; total];
        cx.report(self.name(), 0, total);
        for (chunk_index, chunk) in pairs.chunks(self.batch_size).enumerate() {
            let n = chunk.len();
            let images: Vec<usize> = chunk.iter().map(|&(b, _)| b).collect();
            let idx = Tensor::from_iter(images.iter().map(|&b| b as u32), dev)?;
            let copies = a.index_select(&idx, 0)?;
            // keep: 1 except the ablated channel; fill: the ablation value there.
            let mut keep = vec![1f32; n * k];
            let mut fill = vec![0f32; n * k];
            for (i, &(b, ch)) in chunk.iter().enumerate() {
                keep[i * k + ch] = 0.0;
                fill[i * k + ch] = value(b, ch);
            }
            let keep = Tensor::from_vec(keep, (n, k, 1, 1), dev)?.to_dtype(a.dtype())?;
            let fill = Tensor::from_vec(fill, (n, k, 1, 1), dev)?.to_dtype(a.dtype())?;
            let ablated = copies.broadcast_mul(&keep)?.broadcast_add(&fill)?;
            let out = cx.model.forward_from(&ablated, cx.layer)?;
            let s = cx.targets.score_rows(&images, &out)?;
            let start = chunk_index * self.batch_size;
            scores[start..start + n].copy_from_slice(&s);
            cx.report(self.name(), start + n, total);
        }
        let weights: Vec<f32> = pairs
            .iter()
            .zip(&scores)
            .map(|(&(b, _), &s)| {
                let y = original[b];
                match self.weights {
                    AblationWeights::Relative => (y - s) / y,
                    AblationWeights::Difference => y - s,
                }
            })
            .collect();
        let weights = Tensor::from_vec(weights, (batch, k), dev)?.to_dtype(a.dtype())?;
        cx.weighted_map(&weights)
    }
}
