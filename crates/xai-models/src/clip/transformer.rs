//! The residual attention blocks shared by CLIP's ViT image tower and its text tower, with
//! OpenAI's parameter names (`resblocks.{i}.ln_1`, `attn.in_proj_weight`, `mlp.c_fc`, …).

use candle_core::{Device, Tensor, D};

use crate::weights::Checkout;
use crate::{Error, Result};

/// LayerNorm's epsilon in every CLIP model.
pub(crate) const LN_EPS: f64 = 1e-5;

/// The non-linearity between the two MLP layers of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Activation {
    /// `x·σ(1.702·x)`: OpenAI's CLIP weights (and CLIP-Dissect) use it.
    #[default]
    QuickGelu,
    /// The exact GELU, `x·Φ(x)` with the error function (torch's `nn.GELU()`), used by e.g.
    /// LAION's open_clip `ViT-B-32`.
    Gelu,
}

impl Activation {
    /// Parses a Hugging Face `hidden_act` value (`quick_gelu`, `gelu`).
    pub fn from_hf(name: &str) -> Option<Self> {
        match name {
            "quick_gelu" => Some(Self::QuickGelu),
            "gelu" => Some(Self::Gelu),
            _ => None,
        }
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::QuickGelu => (x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?,
            Self::Gelu => x.gelu_erf()?,
        })
    }
}

/// A LayerNorm over the last dimension.
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    pub(crate) fn take(
        ck: &mut Checkout<'_>,
        prefix: &str,
        width: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            weight: ck
                .take(&format!("{prefix}.weight"), &[width])?
                .to_device(device)?,
            bias: ck
                .take(&format!("{prefix}.bias"), &[width])?
                .to_device(device)?,
        })
    }

    /// Two passes (mean, then the variance of the centred values), as torch does: the
    /// one-pass `E[x²] − E[x]²` of candle's fused kernel loses digits on the residual stream,
    /// whose mean can be large beside its spread.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let width = x.dim(D::Minus1)? as f64;
        let centred = x.broadcast_sub(&(x.sum_keepdim(D::Minus1)? / width)?)?;
        let var = (centred.sqr()?.sum_keepdim(D::Minus1)? / width)?;
        let inv_std = (var + LN_EPS)?.sqrt()?.recip()?;
        Ok(centred
            .broadcast_mul(&inv_std)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?)
    }
}

/// A dense layer `y = x·Wᵀ + b` on `(..., in)` inputs.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    /// `(in, out)`: transposed once at load time, so every product reads it in memory order.
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// Takes `{prefix}.weight` `(out, in)` and, with `bias`, `{prefix}.bias` `(out,)`.
    pub(crate) fn take(
        ck: &mut Checkout<'_>,
        prefix: &str,
        in_dim: usize,
        out_dim: usize,
        device: &Device,
    ) -> Result<Self> {
        let weight = ck.take(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
        let bias = ck.take(&format!("{prefix}.bias"), &[out_dim])?;
        Self::new(&weight, Some(bias), device)
    }

    /// From a `(out, in)` weight.
    pub(crate) fn new(weight: &Tensor, bias: Option<Tensor>, device: &Device) -> Result<Self> {
        Ok(Self {
            weight_t: weight.to_device(device)?.t()?.contiguous()?,
            bias: bias.map(|b| b.to_device(device)).transpose()?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = dims.last().copied().unwrap_or(0);
        let rows = x.elem_count() / in_dim.max(1);
        let y = x.reshape((rows, in_dim))?.matmul(&self.weight_t)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = self.weight_t.dim(1)?;
        }
        Ok(y.reshape(out_dims)?)
    }
}

/// One pre-norm block: `x += attn(ln_1(x)); x += mlp(ln_2(x))`.
#[derive(Debug, Clone)]
struct ResidualAttentionBlock {
    ln_1: LayerNorm,
    in_proj: Linear,
    out_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
}

/// A stack of CLIP's residual attention blocks (`{prefix}resblocks.{i}.*`).
#[derive(Debug, Clone)]
pub struct Transformer {
    blocks: Vec<ResidualAttentionBlock>,
    width: usize,
    heads: usize,
    activation: Activation,
}

impl Transformer {
    /// Reads the blocks `{prefix}resblocks.0.`, `{prefix}resblocks.1.`, … (as many as the
    /// file has) of width `width`. `heads` defaults to `width / 64`, CLIP's head width; the
    /// MLP width is read from `mlp.c_fc.weight`.
    ///
    /// Missing or mis-shaped tensors are recorded in `ck` (see [`Checkout::finish`]).
    pub fn from_checkout(
        ck: &mut Checkout<'_>,
        prefix: &str,
        width: usize,
        heads: Option<usize>,
        activation: Activation,
        device: &Device,
    ) -> Result<Self> {
        let heads = heads.unwrap_or((width / 64).max(1));
        if heads == 0 || width % heads != 0 {
            return Err(Error::Parameter {
                name: "heads",
                reason: format!(
                    "{heads} attention heads do not divide the width {width} of `{prefix}resblocks`"
                ),
            });
        }
        let layers = (0..)
            .take_while(|i| {
                ck.shape_of(&format!("{prefix}resblocks.{i}.ln_1.weight"))
                    .is_some()
            })
            .count();
        if layers == 0 {
            // Records the first block's names as missing, so that the error lists them.
            ck.take(&format!("{prefix}resblocks.0.ln_1.weight"), &[width])?;
        }
        let mut blocks = Vec::with_capacity(layers);
        for i in 0..layers {
            let p = format!("{prefix}resblocks.{i}");
            let hidden = ck
                .shape_of(&format!("{p}.mlp.c_fc.weight"))
                .and_then(|s| s.first().copied())
                .unwrap_or(4 * width);
            let in_proj = Linear::new(
                &ck.take(&format!("{p}.attn.in_proj_weight"), &[3 * width, width])?,
                Some(ck.take(&format!("{p}.attn.in_proj_bias"), &[3 * width])?),
                device,
            )?;
            blocks.push(ResidualAttentionBlock {
                ln_1: LayerNorm::take(ck, &format!("{p}.ln_1"), width, device)?,
                in_proj,
                out_proj: Linear::take(ck, &format!("{p}.attn.out_proj"), width, width, device)?,
                ln_2: LayerNorm::take(ck, &format!("{p}.ln_2"), width, device)?,
                c_fc: Linear::take(ck, &format!("{p}.mlp.c_fc"), width, hidden, device)?,
                c_proj: Linear::take(ck, &format!("{p}.mlp.c_proj"), hidden, width, device)?,
            });
        }
        Ok(Self {
            blocks,
            width,
            heads,
            activation,
        })
    }

    /// Runs the blocks on `(N, T, width)` tokens; `causal` masks attention to later tokens
    /// (the text tower).
    pub fn forward(&self, x: &Tensor, causal: bool) -> Result<Tensor> {
        let (_, t, w) = x.dims3()?;
        if w != self.width {
            return Err(Error::InputShape {
                what: "transformer tokens".into(),
                actual: x.dims().to_vec(),
                expected: format!("(N, T, {})", self.width),
            });
        }
        let mask = if causal {
            Some(causal_mask(t, x.device())?)
        } else {
            None
        };
        let mut x = x.clone();
        for block in &self.blocks {
            x = self.block(block, &x, mask.as_ref())?;
        }
        Ok(x)
    }

    fn block(
        &self,
        b: &ResidualAttentionBlock,
        x: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let x = (x + self.attention(b, &b.ln_1.forward(x)?, mask)?)?;
        let h = self
            .activation
            .apply(&b.c_fc.forward(&b.ln_2.forward(&x)?)?)?;
        Ok((&x + b.c_proj.forward(&h)?)?)
    }

    fn attention(
        &self,
        b: &ResidualAttentionBlock,
        x: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (n, t, w) = x.dims3()?;
        let (h, d) = (self.heads, w / self.heads);
        // (N, T, 3W) → (3, N, H, T, d): one product for q, k and v of every token.
        let qkv = b
            .in_proj
            .forward(x)?
            .reshape((n, t, 3, h, d))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let q = (qkv.get(0)? * (d as f64).powf(-0.5))?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;
        let scores = q.matmul(&k.t()?.contiguous()?)?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((n, t, w))?;
        b.out_proj.forward(&out)
    }

    /// The token width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The number of blocks.
    pub fn layers(&self) -> usize {
        self.blocks.len()
    }

    /// The number of attention heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// The MLP non-linearity.
    pub fn activation(&self) -> Activation {
        self.activation
    }
}

/// `(T, T)`: 0 on and below the diagonal, −∞ above it.
fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(data, (t, t), device)?)
}
