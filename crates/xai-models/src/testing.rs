//! Helpers for tests, doc examples and benchmarks: models with seeded random weights.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};

use crate::clip::{Clip, ClipOptions};
use crate::{BlockKind, ResNet, ResNetConfig, Result, WeightsFile};

/// The torchvision state dict of a ResNet with seeded random weights (He-style scales, random
/// batch-norm statistics), as named tensors.
pub fn random_resnet_tensors(config: &ResNetConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = HashMap::new();
    let mut put =
        |name: String, shape: Vec<usize>, rng: &mut rand::rngs::StdRng, kind: u8| -> Result<()> {
            let n: usize = shape.iter().product();
            let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
            let std = (2.0 / fan_in as f32).sqrt();
            let data: Vec<f32> = (0..n)
                .map(|_| match kind {
                    0 => (rng.random::<f32>() * 2.0 - 1.0) * std * 1.7,
                    1 => 0.5 + rng.random::<f32>(),
                    _ => (rng.random::<f32>() - 0.5) * 0.2,
                })
                .collect();
            out.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
            Ok(())
        };
    let mut conv_bn = |conv: String,
                       bn: String,
                       cin: usize,
                       cout: usize,
                       k: usize,
                       rng: &mut rand::rngs::StdRng|
     -> Result<()> {
        put(format!("{conv}.weight"), vec![cout, cin, k, k], rng, 0)?;
        put(format!("{bn}.weight"), vec![cout], rng, 1)?;
        put(format!("{bn}.bias"), vec![cout], rng, 2)?;
        put(format!("{bn}.running_mean"), vec![cout], rng, 2)?;
        put(format!("{bn}.running_var"), vec![cout], rng, 1)?;
        Ok(())
    };
    let w = config.width;
    conv_bn("conv1".into(), "bn1".into(), 3, w, 7, &mut rng)?;
    let mut in_ch = w;
    for stage in 0..4 {
        let planes = w << stage;
        let out_ch = config.stage_channels(stage);
        for b in 0..config.blocks[stage] {
            let p = format!("layer{}.{b}", stage + 1);
            let shapes = match config.block {
                BlockKind::Basic => vec![(in_ch, planes, 3), (planes, planes, 3)],
                BlockKind::Bottleneck => {
                    vec![(in_ch, planes, 1), (planes, planes, 3), (planes, out_ch, 1)]
                }
            };
            for (i, (ci, co, k)) in shapes.into_iter().enumerate() {
                conv_bn(
                    format!("{p}.conv{}", i + 1),
                    format!("{p}.bn{}", i + 1),
                    ci,
                    co,
                    k,
                    &mut rng,
                )?;
            }
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            if stride != 1 || in_ch != out_ch {
                conv_bn(
                    format!("{p}.downsample.0"),
                    format!("{p}.downsample.1"),
                    in_ch,
                    out_ch,
                    1,
                    &mut rng,
                )?;
            }
            in_ch = out_ch;
        }
    }
    let f = config.feature_channels();
    let mut rng2 = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    let fc: Vec<f32> = (0..config.num_classes * f)
        .map(|_| (rng2.random::<f32>() * 2.0 - 1.0) / (f as f32).sqrt())
        .collect();
    out.insert(
        "fc.weight".into(),
        Tensor::from_vec(fc, (config.num_classes, f), &Device::Cpu)?,
    );
    out.insert(
        "fc.bias".into(),
        Tensor::zeros(config.num_classes, DType::F32, &Device::Cpu)?,
    );
    Ok(out)
}

/// A ResNet with seeded random weights (for tests, examples and benchmarks).
pub fn random_resnet(config: ResNetConfig, seed: u64, device: &Device) -> Result<ResNet> {
    let tensors = random_resnet_tensors(&config, seed)?;
    let weights = WeightsFile::from_tensors(
        format!("<random {} seed {seed}>", config.arch_name()),
        tensors,
    );
    ResNet::from_weights(&weights, config, device)
}

/// The tensors of a CLIP modified-ResNet image tower ([`crate::clip::ModifiedResNet`]) with
/// seeded random weights, named as in OpenAI/open_clip checkpoints under `prefix` (e.g.
/// `visual.`): stem width `width`, `blocks` bottlenecks per stage, a positional embedding for
/// `image_size`² inputs (a multiple of 32) and an `embed_dim`-wide output.
pub fn random_clip_resnet_tensors(
    prefix: &str,
    width: usize,
    blocks: [usize; 4],
    image_size: usize,
    embed_dim: usize,
    seed: u64,
) -> Result<HashMap<String, Tensor>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = HashMap::new();
    // kind 0: weight, uniform with a He-like scale; 1: around one; 2: small around zero.
    let mut put = |name: String, shape: Vec<usize>, kind: u8| -> Result<()> {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let bound = (6.0 / fan_in as f32).sqrt();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let u = rng.random::<f32>();
                match kind {
                    0 => (2.0 * u - 1.0) * bound,
                    1 => 0.5 + u,
                    _ => (u - 0.5) * 0.2,
                }
            })
            .collect();
        out.insert(
            format!("{prefix}{name}"),
            Tensor::from_vec(data, shape, &Device::Cpu)?,
        );
        Ok(())
    };
    let mut conv_bn = |conv: String, bn: String, cin: usize, cout: usize, k: usize| {
        put(format!("{conv}.weight"), vec![cout, cin, k, k], 0)?;
        put(format!("{bn}.weight"), vec![cout], 1)?;
        put(format!("{bn}.bias"), vec![cout], 2)?;
        put(format!("{bn}.running_mean"), vec![cout], 2)?;
        put(format!("{bn}.running_var"), vec![cout], 1)
    };
    let half = width / 2;
    conv_bn("conv1".into(), "bn1".into(), 3, half, 3)?;
    conv_bn("conv2".into(), "bn2".into(), half, half, 3)?;
    conv_bn("conv3".into(), "bn3".into(), half, width, 3)?;
    let mut in_ch = width;
    for (stage, &count) in blocks.iter().enumerate() {
        let planes = width << stage;
        let out_ch = 4 * planes;
        for b in 0..count {
            let p = format!("layer{}.{b}", stage + 1);
            for (i, (ci, co, k)) in [(in_ch, planes, 1), (planes, planes, 3), (planes, out_ch, 1)]
                .into_iter()
                .enumerate()
            {
                conv_bn(
                    format!("{p}.conv{}", i + 1),
                    format!("{p}.bn{}", i + 1),
                    ci,
                    co,
                    k,
                )?;
            }
            if (stage > 0 && b == 0) || in_ch != out_ch {
                let (conv, bn) = (format!("{p}.downsample.0"), format!("{p}.downsample.1"));
                conv_bn(conv, bn, in_ch, out_ch, 1)?;
            }
            in_ch = out_ch;
        }
    }
    let c = in_ch;
    let grid = image_size / 32;
    put(
        "attnpool.positional_embedding".into(),
        vec![grid * grid + 1, c],
        0,
    )?;
    for proj in ["q_proj", "k_proj", "v_proj"] {
        put(format!("attnpool.{proj}.weight"), vec![c, c], 0)?;
        put(format!("attnpool.{proj}.bias"), vec![c], 2)?;
    }
    put("attnpool.c_proj.weight".into(), vec![embed_dim, c], 0)?;
    put("attnpool.c_proj.bias".into(), vec![embed_dim], 2)?;
    Ok(out)
}

/// The sizes of a CLIP ViT model made by [`random_clip_vit_tensors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipVitSizes {
    /// Token width of the image tower.
    pub vision_width: usize,
    /// Residual attention blocks of the image tower.
    pub vision_layers: usize,
    /// Patch size.
    pub patch: usize,
    /// Patches per side (the input is `grid · patch` square).
    pub grid: usize,
    /// Width of the joint embedding.
    pub embed_dim: usize,
    /// Token width of the text tower.
    pub text_width: usize,
    /// Residual attention blocks of the text tower.
    pub text_layers: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Context length.
    pub context: usize,
}

impl ClipVitSizes {
    /// A tiny model for tests and doc examples: widths 64 (one 64-wide head), two layers per
    /// tower, patch 8 on a 4×4 grid (32×32 input), embed 32, vocabulary 100, context 16.
    pub fn tiny() -> Self {
        Self {
            vision_width: 64,
            vision_layers: 2,
            patch: 8,
            grid: 4,
            embed_dim: 32,
            text_width: 64,
            text_layers: 2,
            vocab: 100,
            context: 16,
        }
    }

    /// OpenAI's ViT-B/32 (151 M parameters).
    pub fn vit_b32() -> Self {
        Self {
            vision_width: 768,
            vision_layers: 12,
            patch: 32,
            grid: 7,
            embed_dim: 512,
            text_width: 512,
            text_layers: 12,
            vocab: 49408,
            context: 77,
        }
    }
}

/// The OpenAI-layout state dict of a CLIP ViT with seeded random weights: `1/√fan_in`-scaled
/// matrices, LayerNorm scales around 1 and small random biases.
pub fn random_clip_vit_tensors(sizes: &ClipVitSizes, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, kind: u8| -> Result<()> {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let scale = (3.0 / fan_in as f32).sqrt();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let u = rng.random::<f32>() * 2.0 - 1.0;
                match kind {
                    0 => u * scale,
                    1 => 1.0 + 0.2 * u,
                    _ => 0.1 * u,
                }
            })
            .collect();
        out.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
        Ok(())
    };
    let mut blocks = |prefix: &str, width: usize, layers: usize| -> Result<()> {
        for i in 0..layers {
            let p = format!("{prefix}resblocks.{i}");
            for ln in ["ln_1", "ln_2"] {
                put(format!("{p}.{ln}.weight"), vec![width], 1)?;
                put(format!("{p}.{ln}.bias"), vec![width], 2)?;
            }
            put(
                format!("{p}.attn.in_proj_weight"),
                vec![3 * width, width],
                0,
            )?;
            put(format!("{p}.attn.in_proj_bias"), vec![3 * width], 2)?;
            put(format!("{p}.attn.out_proj.weight"), vec![width, width], 0)?;
            put(format!("{p}.attn.out_proj.bias"), vec![width], 2)?;
            put(format!("{p}.mlp.c_fc.weight"), vec![4 * width, width], 0)?;
            put(format!("{p}.mlp.c_fc.bias"), vec![4 * width], 2)?;
            put(format!("{p}.mlp.c_proj.weight"), vec![width, 4 * width], 0)?;
            put(format!("{p}.mlp.c_proj.bias"), vec![width], 2)?;
        }
        Ok(())
    };
    let s = sizes;
    blocks("visual.transformer.", s.vision_width, s.vision_layers)?;
    blocks("transformer.", s.text_width, s.text_layers)?;
    let (vw, tw) = (s.vision_width, s.text_width);
    put(
        "visual.conv1.weight".into(),
        vec![vw, 3, s.patch, s.patch],
        0,
    )?;
    put("visual.class_embedding".into(), vec![vw], 2)?;
    put(
        "visual.positional_embedding".into(),
        vec![s.grid * s.grid + 1, vw],
        2,
    )?;
    for ln in ["visual.ln_pre", "visual.ln_post", "ln_final"] {
        let w = if ln == "ln_final" { tw } else { vw };
        put(format!("{ln}.weight"), vec![w], 1)?;
        put(format!("{ln}.bias"), vec![w], 2)?;
    }
    // Drawn as (out, in) for the fan-in, stored as OpenAI does: (in, out), used as `x @ proj`.
    put("visual.proj".into(), vec![s.embed_dim, vw], 0)?;
    put("token_embedding.weight".into(), vec![s.vocab, tw], 2)?;
    put("positional_embedding".into(), vec![s.context, tw], 2)?;
    put("text_projection".into(), vec![s.embed_dim, tw], 0)?;
    for name in ["visual.proj", "text_projection"] {
        if let Some(t) = out.remove(name) {
            out.insert(name.to_string(), t.t()?.contiguous()?);
        }
    }
    Ok(out)
}

/// A CLIP ViT with seeded random weights (for tests, examples and benchmarks); heads are
/// `width / 64`.
pub fn random_clip_vit(sizes: &ClipVitSizes, seed: u64, device: &Device) -> Result<Clip> {
    let tensors = random_clip_vit_tensors(sizes, seed)?;
    let weights = WeightsFile::from_tensors(format!("<random CLIP ViT seed {seed}>"), tensors);
    Clip::from_weights(&weights, ClipOptions::default(), device)
}
