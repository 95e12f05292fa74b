//! CLIP's modified ResNet image tower (RN50 and its wider siblings), OpenAI/open_clip layout.
//!
//! Placeholder for the interface the CLIP façade builds on; the tower itself is being written.

use candle_core::{Device, Tensor};

use crate::weights::Checkout;
use crate::{Error, Result};

/// CLIP's modified ResNet image tower: three-convolution stem, anti-aliased (average-pool)
/// bottlenecks and an attention-pooling head.
#[derive(Debug, Clone)]
pub struct ModifiedResNet {
    embed_dim: usize,
    image_size: usize,
}

impl ModifiedResNet {
    /// Reads the tower from the tensors under `prefix` (`visual.` in CLIP checkpoints); `heads`
    /// overrides the attention-pool head count (default: channels / 64, CLIP's convention).
    pub fn from_checkout(
        _ck: &mut Checkout<'_>,
        _prefix: &str,
        _heads: Option<usize>,
        _device: &Device,
    ) -> Result<Self> {
        Err(Error::Parameter {
            name: "clip",
            reason: "CLIP's RN50 image tower is not built in this version".into(),
        })
    }

    /// `(N, 3, S, S)` normalised pixels → `(N, embed_dim)` image embeddings (not normalised).
    pub fn forward(&self, _pixels: &Tensor) -> Result<Tensor> {
        Err(Error::Parameter {
            name: "clip",
            reason: "CLIP's RN50 image tower is not built in this version".into(),
        })
    }

    /// Width of the image embedding.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// The square input size the positional embedding of the attention pool fits.
    pub fn image_size(&self) -> usize {
        self.image_size
    }
}
