//! CLIP's modified ResNet image tower (RN50 and its wider siblings), OpenAI/open_clip layout.
//!
//! The architecture (Radford et al. 2021, §2.4; `ModifiedResNet` in OpenAI's `clip/model.py`
//! and open_clip's `modified_resnet.py`), in eval mode:
//!
//! - stem: three 3×3 convolutions (3 → w/2 stride 2, w/2 → w/2, w/2 → w), each with
//!   batch-norm and ReLU, then a 2×2 average pool;
//! - `layer1` … `layer4` of bottlenecks (planes w, 2w, 4w, 8w; 4× expansion) whose
//!   convolutions all have stride 1: a stride-s block average-pools by s after its 3×3
//!   convolution, and its shortcut average-pools by s before the 1×1 `downsample` convolution
//!   (anti-aliased downsampling);
//! - an attention pool: the final feature map as tokens, their mean prepended, a learned
//!   positional embedding added, and one multi-head attention with the mean token as the only
//!   query, then an output projection `c_proj` to the embedding width.
//!
//! Batch-norm is folded into the convolutions at load time ([`crate::conv_bn`]); on the CPU
//! they run through [`crate::conv::PackedConv`].

use candle_core::{Device, Tensor, D};

use crate::conv_bn::ConvBn;
use crate::weights::Checkout;
use crate::{Error, LayerInfo, Result};

/// Output channels per planes of a bottleneck.
const EXPANSION: usize = 4;
/// Total downsampling of the tower (stem 4×, then three stride-2 stages).
const REDUCTION: usize = 32;
/// CLIP's attention-pool head width (heads = channels / 64 unless overridden).
const HEAD_WIDTH: usize = 64;

#[derive(Debug, Clone)]
struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    /// The average pool after `conv2` and on the shortcut (1: none).
    stride: usize,
    downsample: Option<ConvBn>,
}

impl Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv1.forward(x, true)?;
        let y = avg_pool(&self.conv2.forward(&y, true)?, self.stride)?;
        let shortcut = match &self.downsample {
            Some(ds) => ds.forward(&avg_pool(x, self.stride)?, false)?,
            None => x.clone(),
        };
        self.conv3.forward_add_relu(&y, &shortcut)
    }
}

/// `AvgPool2d(k)` (kernel = stride = k, no padding, floor), the identity for `k = 1`.
fn avg_pool(x: &Tensor, k: usize) -> Result<Tensor> {
    if k <= 1 {
        return Ok(x.clone());
    }
    crate::ops::avg_pool2d(x, k)
}

/// The attention pool, with its projections rearranged for a single query.
///
/// With one query `q` (per head `h`) the keys and values of all `T` tokens need never be
/// formed: `q_h · (W_k,h x_t + b_k,h) = (W_k,hᵀ q_h) · x_t + q_h · b_k,h`, whose last term is
/// the same for every token and cancels in the softmax, and `Σ_t a_t (W_v,h x_t + b_v,h) =
/// W_v,h (Σ_t a_t x_t) + b_v,h` because the weights `a_t` sum to one. That is two `C × C`
/// products per image instead of `2T` (T = 50 for RN50 at 224), with the same result.
#[derive(Debug, Clone)]
struct AttentionPool {
    /// `(T, C)`: the mean token's, then the grid's in row-major order.
    positional: Tensor,
    /// `q_proj.weight` transposed, `(C, C)`, pre-multiplied by `head_dim^-½`; likewise its bias.
    q_weight_t: Tensor,
    q_bias: Tensor,
    /// `k_proj.weight` as `(heads, head_dim, C)`.
    k_weight: Tensor,
    /// `v_proj.weight` as `(heads, C, head_dim)` (each head's block transposed).
    v_weight_t: Tensor,
    v_bias: Tensor,
    /// `c_proj.weight` transposed, `(C, E)`, and its bias.
    c_weight_t: Tensor,
    c_bias: Tensor,
    heads: usize,
}

impl AttentionPool {
    fn load(
        ck: &mut Checkout<'_>,
        prefix: &str,
        (channels, embed_dim, tokens, heads): (usize, usize, usize, usize),
        device: &Device,
    ) -> Result<Self> {
        let c = channels;
        let head_dim = c / heads;
        let mut take = |name: &str, shape: &[usize]| -> Result<Tensor> {
            Ok(ck
                .take(&format!("{prefix}attnpool.{name}"), shape)?
                .to_device(device)?)
        };
        let positional = take("positional_embedding", &[tokens, c])?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let q_weight_t = (take("q_proj.weight", &[c, c])?.t()?.contiguous()? * scale)?;
        let q_bias = (take("q_proj.bias", &[c])? * scale)?;
        let k_weight = take("k_proj.weight", &[c, c])?.reshape((heads, head_dim, c))?;
        // Its bias only shifts every score of a head by the same amount (see above).
        take("k_proj.bias", &[c])?;
        let v_weight_t = take("v_proj.weight", &[c, c])?
            .reshape((heads, head_dim, c))?
            .transpose(1, 2)?
            .contiguous()?;
        let v_bias = take("v_proj.bias", &[c])?;
        let c_weight_t = take("c_proj.weight", &[embed_dim, c])?.t()?.contiguous()?;
        let c_bias = take("c_proj.bias", &[embed_dim])?;
        Ok(Self {
            positional,
            q_weight_t,
            q_bias,
            k_weight,
            v_weight_t,
            v_bias,
            c_weight_t,
            c_bias,
            heads,
        })
    }

    /// `(N, C, H, W)` features (`H·W + 1` = the positional embedding's rows) → `(N, E)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let heads = self.heads;
        let tokens = x.reshape((n, c, h * w))?.transpose(1, 2)?;
        let mean = tokens.mean_keepdim(1)?;
        // (N, T, C)
        let tokens = Tensor::cat(&[&mean, &tokens], 1)?.broadcast_add(&self.positional)?;
        let query = tokens.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
        let q = query
            .matmul(&self.q_weight_t)?
            .broadcast_add(&self.q_bias)?;
        // (heads, N, head_dim) · (heads, head_dim, C) → the query mapped back to token space.
        let q = q
            .reshape((n, heads, c / heads))?
            .transpose(0, 1)?
            .contiguous()?;
        let u = q.matmul(&self.k_weight)?.transpose(0, 1)?.contiguous()?;
        // (N, heads, C) · (N, C, T) → scores (N, heads, T).
        let scores = u.matmul(&tokens.transpose(1, 2)?.contiguous()?)?;
        let attn = candle_nn::ops::softmax(&scores, D::Minus1)?;
        // The attention-weighted token of each head, (N, heads, C), through its value block.
        let z = attn.matmul(&tokens)?.transpose(0, 1)?.contiguous()?;
        let out = z
            .matmul(&self.v_weight_t)?
            .transpose(0, 1)?
            .reshape((n, c))?
            .broadcast_add(&self.v_bias)?;
        Ok(out.matmul(&self.c_weight_t)?.broadcast_add(&self.c_bias)?)
    }
}

/// CLIP's modified ResNet image tower: three-convolution stem, anti-aliased (average-pool)
/// bottlenecks and an attention-pooling head.
///
/// Every size is read from the weights: the width from the stem, the blocks per stage by
/// counting them, the embedding width from `attnpool.c_proj`, the input size from the
/// positional embedding (`(size / 32)² + 1` rows). Named layers (`stem`, `layer1.0` …
/// `layer4`, `attnpool`) can be reached with [`forward_to`](Self::forward_to) and resumed
/// from with [`forward_from`](Self::forward_from), as for a [`crate::Backbone`].
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_models::clip::ModifiedResNet;
/// use xai_models::WeightsFile;
///
/// // A tiny random tower (stem width 4, one block per stage, 64×64 input, embedding 16).
/// let tensors = xai_models::testing::random_clip_resnet_tensors("visual.", 4, [1, 1, 1, 1], 64, 16, 0)?;
/// let weights = WeightsFile::from_tensors("tiny", tensors);
/// let mut ck = weights.checkout("clip-rn");
/// let tower = ModifiedResNet::from_checkout(&mut ck, "visual.", Some(4), &Device::Cpu)?;
/// ck.finish(&["num_batches_tracked"], None)?;
/// assert_eq!((tower.embed_dim(), tower.image_size()), (16, 64));
/// let pixels = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu)?;
/// assert_eq!(tower.forward(&pixels)?.dims(), &[2, 16]);
/// assert_eq!(tower.forward_to(&pixels, "layer4")?.dims(), &[2, 128, 2, 2]);
/// # Ok::<(), xai_models::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ModifiedResNet {
    stem: [ConvBn; 3],
    blocks: Vec<Bottleneck>,
    pool: AttentionPool,
    layers: Vec<LayerInfo>,
    /// For each entry of `layers`, the unit whose output it is (0 stem, then the blocks,
    /// then the attention pool).
    layer_units: Vec<usize>,
    width: usize,
    embed_dim: usize,
    image_size: usize,
    device: Device,
}

impl ModifiedResNet {
    /// Reads the tower from the tensors under `prefix` (`visual.` in CLIP checkpoints); `heads`
    /// overrides the attention-pool head count (default: channels / 64, CLIP's convention).
    ///
    /// Missing and mis-shaped tensors are recorded in `ck` (placeholders stand in for them):
    /// call [`Checkout::finish`] afterwards to get the error that names them.
    pub fn from_checkout(
        ck: &mut Checkout<'_>,
        prefix: &str,
        heads: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let key = |name: &str| format!("{prefix}{name}");
        // RN50's sizes stand in for whatever is missing, so that the checkout names it.
        let half = ck
            .shape_of(&key("conv1.weight"))
            .map_or(32, |s| s.first().copied().unwrap_or(32));
        let width = ck
            .shape_of(&key("conv3.weight"))
            .map_or(2 * half, |s| s.first().copied().unwrap_or(2 * half));
        let stem = [
            ConvBn::load(ck, &key("conv1"), &key("bn1"), (3, half, 3), 2, device)?,
            ConvBn::load(ck, &key("conv2"), &key("bn2"), (half, half, 3), 1, device)?,
            ConvBn::load(ck, &key("conv3"), &key("bn3"), (half, width, 3), 1, device)?,
        ];
        let mut layers = vec![LayerInfo::spatial("stem", width)];
        let mut layer_units = vec![0];
        let mut blocks = Vec::new();
        let mut in_ch = width;
        for stage in 0..4 {
            let planes = width << stage;
            let out_ch = planes * EXPANSION;
            let count = (0..)
                .take_while(|b| {
                    ck.shape_of(&key(&format!("layer{}.{b}.conv1.weight", stage + 1)))
                        .is_some()
                })
                .count()
                // An empty stage is a missing one: ask for its first block to have it named.
                .max(1);
            for b in 0..count {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let p = key(&format!("layer{}.{b}", stage + 1));
                let conv = |ck: &mut Checkout<'_>, i: usize, (ci, co, k): (usize, usize, usize)| {
                    ConvBn::load(
                        ck,
                        &format!("{p}.conv{i}"),
                        &format!("{p}.bn{i}"),
                        (ci, co, k),
                        1,
                        device,
                    )
                };
                let conv1 = conv(ck, 1, (in_ch, planes, 1))?;
                let conv2 = conv(ck, 2, (planes, planes, 3))?;
                let conv3 = conv(ck, 3, (planes, out_ch, 1))?;
                // Module `downsample.-1` is the parameterless average pool.
                let downsample = if stride > 1 || in_ch != out_ch {
                    Some(ConvBn::load(
                        ck,
                        &format!("{p}.downsample.0"),
                        &format!("{p}.downsample.1"),
                        (in_ch, out_ch, 1),
                        1,
                        device,
                    )?)
                } else {
                    None
                };
                blocks.push(Bottleneck {
                    conv1,
                    conv2,
                    conv3,
                    stride,
                    downsample,
                });
                layers.push(LayerInfo::spatial(
                    format!("layer{}.{b}", stage + 1),
                    out_ch,
                ));
                layer_units.push(blocks.len());
                in_ch = out_ch;
            }
            layers.push(LayerInfo::spatial(format!("layer{}", stage + 1), out_ch));
            layer_units.push(blocks.len());
        }
        let channels = in_ch;
        let embed_dim = ck
            .shape_of(&key("attnpool.c_proj.weight"))
            .map_or(channels / 2, |s| s.first().copied().unwrap_or(channels / 2));
        let tokens = ck
            .shape_of(&key("attnpool.positional_embedding"))
            .map_or(50, |s| s.first().copied().unwrap_or(50));
        let grid = (tokens.saturating_sub(1) as f64).sqrt().round() as usize;
        if grid == 0 || grid * grid + 1 != tokens {
            return Err(Error::Parameter {
                name: "attnpool.positional_embedding",
                reason: format!(
                    "{tokens} rows under `{prefix}attnpool.positional_embedding`; a CLIP \
                     attention pool has (size / 32)² + 1 rows (50 for 224×224 inputs)"
                ),
            });
        }
        let heads = heads.unwrap_or((channels / HEAD_WIDTH).max(1));
        if heads == 0 || channels % heads != 0 {
            return Err(Error::Parameter {
                name: "heads",
                reason: format!(
                    "{heads} attention-pool heads do not divide the {channels} channels of \
                     `{prefix}attnpool`; CLIP uses channels / 64"
                ),
            });
        }
        let pool = AttentionPool::load(ck, prefix, (channels, embed_dim, tokens, heads), device)?;
        layers.push(LayerInfo::vector("attnpool", embed_dim));
        layer_units.push(blocks.len() + 1);
        Ok(Self {
            stem,
            blocks,
            pool,
            layers,
            layer_units,
            width,
            embed_dim,
            image_size: grid * REDUCTION,
            device: device.clone(),
        })
    }

    /// `(N, 3, S, S)` normalised pixels → `(N, embed_dim)` image embeddings (not normalised).
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        self.check_input(pixels)?;
        self.run(pixels.clone(), 0, self.units())
    }

    /// Width of the image embedding.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// The square input size the positional embedding of the attention pool fits.
    pub fn image_size(&self) -> usize {
        self.image_size
    }

    /// Channels of the stem's output (64 for RN50); the stages have 4, 8, 16 and 32 times as
    /// many.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of attention-pool heads.
    pub fn heads(&self) -> usize {
        self.pool.heads
    }

    /// Number of bottlenecks in each of `layer1` … `layer4` (RN50: 3, 4, 6, 3).
    pub fn blocks_per_stage(&self) -> [usize; 4] {
        let mut out = [0; 4];
        for info in &self.layers {
            if let Some(stage) = info
                .name
                .strip_prefix("layer")
                .filter(|rest| rest.contains('.'))
                .and_then(|rest| rest.split('.').next()?.parse::<usize>().ok())
            {
                if let Some(slot) = out.get_mut(stage.wrapping_sub(1)) {
                    *slot += 1;
                }
            }
        }
        out
    }

    /// The device the weights are on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The layers that [`forward_to`](Self::forward_to) can stop at, in execution order:
    /// `stem` (after its average pool), each block `layer{L}.{b}`, each stage `layer{L}`
    /// (the output of its last block), and `attnpool` (the embedding).
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// Runs the tower on `pixels` up to the output of `layer`.
    pub fn forward_to(&self, pixels: &Tensor, layer: &str) -> Result<Tensor> {
        self.check_input(pixels)?;
        let unit = self.layer_units[self.layer_index(layer)?];
        self.run(pixels.clone(), 0, unit + 1)
    }

    /// Runs the rest of the tower from `activation`, the output of `layer` (e.g. an edited or
    /// differentiable `layer4` map), to the embedding.
    pub fn forward_from(&self, activation: &Tensor, layer: &str) -> Result<Tensor> {
        let index = self.layer_index(layer)?;
        let info = &self.layers[index];
        info.check_activation(activation)?;
        let unit = self.layer_units[index];
        if unit < self.blocks.len() + 1 {
            let (_, _, h, w) = activation.dims4()?;
            let down = 1usize << self.blocks[unit..].iter().filter(|b| b.stride > 1).count();
            let grid = self.grid();
            if h / down != grid || w / down != grid {
                return Err(Error::InputShape {
                    what: format!("activation of `{layer}`"),
                    actual: activation.dims().to_vec(),
                    expected: format!(
                        "(batch, {}, {}, {}), the grid that becomes the attention pool's {grid}×{grid}",
                        info.channels,
                        grid * down,
                        grid * down
                    ),
                });
            }
        }
        self.run(activation.clone(), unit + 1, self.units())
    }

    fn layer_index(&self, layer: &str) -> Result<usize> {
        crate::layer::layer_position(&self.layers, layer)
    }

    fn grid(&self) -> usize {
        self.image_size / REDUCTION
    }

    fn units(&self) -> usize {
        self.blocks.len() + 2
    }

    /// The pixels must give the attention pool's grid: the sizes torch would accept.
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let grid_of = |size: usize| {
            // conv1 (3×3, stride 2, padding 1), the stem's pool, then the strided stages.
            let mut s = size.div_ceil(2) / 2;
            for b in self.blocks.iter().filter(|b| b.stride > 1) {
                s /= b.stride;
            }
            s
        };
        match x.dims() {
            [_, 3, h, w] if grid_of(*h) == self.grid() && grid_of(*w) == self.grid() => Ok(()),
            dims => Err(Error::InputShape {
                what: "CLIP ResNet pixels".into(),
                actual: dims.to_vec(),
                expected: format!(
                    "(batch, 3, {s}, {s}): the attention pool's positional embedding fits a \
                     {g}×{g} grid, i.e. {s}×{s} pixels; resize (or centre-crop) the images",
                    s = self.image_size,
                    g = self.grid()
                ),
            }),
        }
    }

    /// Runs units `from..to`.
    fn run(&self, mut x: Tensor, from: usize, to: usize) -> Result<Tensor> {
        let nb = self.blocks.len();
        for unit in from..to {
            x = match unit {
                0 => {
                    let mut y = x;
                    for conv in &self.stem {
                        y = conv.forward(&y, true)?;
                    }
                    avg_pool(&y, 2)?
                }
                u if u <= nb => self.blocks[u - 1].forward(&x)?,
                _ => self.pool.forward(&x)?,
            };
        }
        Ok(x)
    }
}
