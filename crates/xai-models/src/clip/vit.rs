//! CLIP's Vision Transformer image tower (ViT-B/32, ViT-B/16, …), OpenAI/open_clip layout.

use candle_core::{Device, Tensor};

use super::transformer::{Activation, LayerNorm, Linear, Transformer};
use crate::weights::Checkout;
use crate::{Error, Result};

/// CLIP's ViT image tower: patch embedding (a stride-`P` convolution without bias), class
/// token, positional embedding, `ln_pre`, the residual attention blocks, `ln_post` on the class
/// token and the projection `proj` to the joint embedding.
///
/// Every size is read from the tensor shapes: the width from `class_embedding`, the patch from
/// `conv1.weight`, the grid from `positional_embedding`, the depth by counting
/// `transformer.resblocks`, the embedding width from `proj`.
#[derive(Debug, Clone)]
pub struct VisionTransformer {
    /// `conv1.weight` as a `(W, 3·P·P)` product: a stride-P convolution is one matrix product
    /// over the non-overlapping patches.
    patch_embed: Linear,
    class_embedding: Tensor,
    positional_embedding: Tensor,
    ln_pre: LayerNorm,
    transformer: Transformer,
    ln_post: LayerNorm,
    proj: Tensor,
    patch: usize,
    grid: usize,
    embed_dim: usize,
}

impl VisionTransformer {
    /// Reads the tower from the tensors under `prefix` (`visual.` in CLIP checkpoints);
    /// `heads` overrides the head count (default: width / 64).
    ///
    /// Missing or mis-shaped tensors are recorded in `ck`; call [`Checkout::finish`] to get
    /// the error naming them.
    pub fn from_checkout(
        ck: &mut Checkout<'_>,
        prefix: &str,
        heads: Option<usize>,
        activation: Activation,
        device: &Device,
    ) -> Result<Self> {
        let name = |n: &str| format!("{prefix}{n}");
        let conv_shape = ck.shape_of(&name("conv1.weight"));
        let width = match ck.shape_of(&name("class_embedding")).as_deref() {
            Some(&[w]) => w,
            _ => conv_shape
                .as_ref()
                .and_then(|s| s.first().copied())
                .unwrap_or(768),
        };
        let patch = match conv_shape.as_deref() {
            Some(&[_, _, p, _]) if p > 0 => p,
            _ => 32,
        };
        let tokens = match ck.shape_of(&name("positional_embedding")).as_deref() {
            Some(&[t, _]) => t,
            _ => 50,
        };
        let grid = (tokens.saturating_sub(1) as f64).sqrt().round() as usize;
        let embed_dim = match ck.shape_of(&name("proj")).as_deref() {
            Some(&[_, e]) => e,
            _ => 512,
        };
        let conv1 = ck.take(&name("conv1.weight"), &[width, 3, patch, patch])?;
        let patch_embed = Linear::new(&conv1.reshape((width, 3 * patch * patch))?, None, device)?;
        let class_embedding = ck.take(&name("class_embedding"), &[width])?;
        let positional_embedding =
            ck.take(&name("positional_embedding"), &[grid * grid + 1, width])?;
        let ln_pre = LayerNorm::take(ck, &name("ln_pre"), width, device)?;
        let transformer = Transformer::from_checkout(
            ck,
            &name("transformer."),
            width,
            heads,
            activation,
            device,
        )?;
        let ln_post = LayerNorm::take(ck, &name("ln_post"), width, device)?;
        let proj = ck.take(&name("proj"), &[width, embed_dim])?;
        Ok(Self {
            patch_embed,
            class_embedding: class_embedding.to_device(device)?.reshape((1, 1, width))?,
            positional_embedding: positional_embedding.to_device(device)?,
            ln_pre,
            transformer,
            ln_post,
            proj: proj.to_device(device)?,
            patch,
            grid,
            embed_dim,
        })
    }

    /// `(N, 3, S, S)` normalised pixels, `S` = [`image_size`](Self::image_size) → `(N, E)`
    /// image embeddings (not normalised).
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let size = self.image_size();
        let n = match pixels.dims() {
            &[n, 3, h, w] if h == size && w == size && n > 0 => n,
            _ => {
                return Err(Error::InputShape {
                    what: "CLIP ViT pixels".into(),
                    actual: pixels.dims().to_vec(),
                    expected: format!(
                        "(N, 3, {size}, {size}) for this checkpoint (patch {}, grid {g}×{g}); \
                         preprocess images to {size}×{size}",
                        self.patch,
                        g = self.grid
                    ),
                })
            }
        };
        let (g, p, w) = (self.grid, self.patch, self.width());
        let patches = pixels
            .reshape((n, 3, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((n, g * g, 3 * p * p))?;
        let tokens = self.patch_embed.forward(&patches)?;
        let class = self.class_embedding.broadcast_as((n, 1, w))?;
        let x = Tensor::cat(&[&class, &tokens], 1)?.broadcast_add(&self.positional_embedding)?;
        let x = self.ln_pre.forward(&x)?;
        let x = self.transformer.forward(&x, false)?;
        let pooled = self.ln_post.forward(&x.narrow(1, 0, 1)?.squeeze(1)?)?;
        Ok(pooled.matmul(&self.proj)?)
    }

    /// The square input size: grid × patch (224 for ViT-B/32 and ViT-B/16).
    pub fn image_size(&self) -> usize {
        self.grid * self.patch
    }

    /// The patch size (32 for ViT-B/32).
    pub fn patch_size(&self) -> usize {
        self.patch
    }

    /// The number of patches per side.
    pub fn grid(&self) -> usize {
        self.grid
    }

    /// The token width (768 for ViT-B).
    pub fn width(&self) -> usize {
        self.transformer.width()
    }

    /// The number of residual attention blocks.
    pub fn layers(&self) -> usize {
        self.transformer.layers()
    }

    /// The number of attention heads.
    pub fn heads(&self) -> usize {
        self.transformer.heads()
    }

    /// The width of the image embedding (512 for ViT-B).
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// The residual attention blocks.
    pub fn transformer(&self) -> &Transformer {
        &self.transformer
    }
}
