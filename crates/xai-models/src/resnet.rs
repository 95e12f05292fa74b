//! ResNet 18/34/50/101/152 with torchvision's structure and parameter names.
//!
//! Every stage is reachable by name (`maxpool`, `layer1.0` … `layer4.2`, `layer1` … `layer4`,
//! `avgpool`, `fc`), so explanation methods can stop at and restart from any of them.
//! Batch-norm is folded into the preceding convolution when the weights are loaded (the model
//! is for inference and explanation, never training), which leaves the function unchanged and
//! saves a pass over every activation.

use std::path::Path;

use candle_core::{Device, Module, Tensor};
use candle_nn::Linear;
use serde::Serialize;

use crate::conv_bn::ConvBn;
use crate::weights::WeightsFile;
use crate::{Backbone, Error, InputSpec, Labels, LayerInfo, Result};

/// The residual block of a ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BlockKind {
    /// Two 3×3 convolutions (ResNet 18 and 34).
    Basic,
    /// 1×1, 3×3 (strided, "v1.5"), 1×1 with a 4× expansion (ResNet 50, 101, 152).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per planes of the stage.
    pub fn expansion(self) -> usize {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => 4,
        }
    }
}

/// The shape of a ResNet: block kind, blocks per stage, stem width, number of classes.
///
/// ```
/// use xai_models::ResNetConfig;
/// let cfg = ResNetConfig::from_arch("resnet50")?;
/// assert_eq!(cfg.blocks, [3, 4, 6, 3]);
/// assert_eq!(cfg.feature_channels(), 2048);
/// # Ok::<(), xai_models::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResNetConfig {
    /// Basic or bottleneck blocks.
    pub block: BlockKind,
    /// Number of blocks in `layer1` … `layer4`.
    pub blocks: [usize; 4],
    /// Channels of the stem and planes of `layer1` (64 in torchvision); later stages double it.
    pub width: usize,
    /// Number of outputs of `fc`.
    pub num_classes: usize,
}

/// The architecture names [`ResNetConfig::from_arch`] knows.
pub const RESNET_ARCHS: [&str; 5] = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"];

impl ResNetConfig {
    /// ResNet-18.
    pub fn resnet18() -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2])
    }
    /// ResNet-34.
    pub fn resnet34() -> Self {
        Self::new(BlockKind::Basic, [3, 4, 6, 3])
    }
    /// ResNet-50.
    pub fn resnet50() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3])
    }
    /// ResNet-101.
    pub fn resnet101() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 23, 3])
    }
    /// ResNet-152.
    pub fn resnet152() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 8, 36, 3])
    }

    fn new(block: BlockKind, blocks: [usize; 4]) -> Self {
        Self {
            block,
            blocks,
            width: 64,
            num_classes: 1000,
        }
    }

    /// The preset called `name` (`resnet18` … `resnet152`).
    pub fn from_arch(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "resnet18" => Self::resnet18(),
            "resnet34" => Self::resnet34(),
            "resnet50" => Self::resnet50(),
            "resnet101" => Self::resnet101(),
            "resnet152" => Self::resnet152(),
            _ => {
                return Err(Error::UnknownArch {
                    name: name.to_string(),
                    known: RESNET_ARCHS.iter().map(|s| s.to_string()).collect(),
                })
            }
        })
    }

    /// The preset name for this block layout (`resnet50`), or a description if none matches.
    pub fn arch_name(&self) -> String {
        RESNET_ARCHS
            .iter()
            .find(|a| {
                Self::from_arch(a)
                    .map(|c| c.block == self.block && c.blocks == self.blocks)
                    .unwrap_or(false)
            })
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("resnet({:?}, {:?})", self.block, self.blocks))
    }

    /// Sets the number of classes.
    pub fn with_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Sets the stem width (64 in torchvision; smaller for tests and tiny models).
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Output channels of stage `stage` (0-based).
    pub fn stage_channels(&self, stage: usize) -> usize {
        (self.width << stage) * self.block.expansion()
    }

    /// Channels entering `fc` (512 for ResNet-18, 2048 for ResNet-50).
    pub fn feature_channels(&self) -> usize {
        self.stage_channels(3)
    }

    /// The preset whose keys a weights file has (block kind and blocks per stage), if any.
    pub fn detect(weights: &WeightsFile) -> Option<Self> {
        let names = weights.names();
        let mut blocks = [0usize; 4];
        for (stage, count) in blocks.iter_mut().enumerate() {
            let prefix = format!("layer{}.", stage + 1);
            *count = names
                .iter()
                .filter_map(|n| {
                    n.strip_prefix(&prefix)?
                        .split('.')
                        .next()?
                        .parse::<usize>()
                        .ok()
                })
                .max()
                .map_or(0, |m| m + 1);
        }
        let block = if names.contains(&"layer1.0.conv3.weight") {
            BlockKind::Bottleneck
        } else {
            BlockKind::Basic
        };
        blocks
            .iter()
            .all(|&b| b > 0)
            .then(|| Self::new(block, blocks))
    }
}

#[derive(Debug, Clone)]
struct Block {
    convs: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let Some((last, first)) = self.convs.split_last() else {
            return Ok(x.clone());
        };
        let mut y = x.clone();
        for conv in first {
            y = conv.forward(&y, true)?;
        }
        let shortcut = match &self.downsample {
            Some(ds) => ds.forward(x, false)?,
            None => x.clone(),
        };
        last.forward_add_relu(&y, &shortcut)
    }
}

/// A torchvision-compatible ResNet.
///
/// ```no_run
/// use candle_core::Device;
/// use xai_models::{Backbone, ResNet};
///
/// let model = ResNet::load("resnet50.safetensors", "resnet50", &Device::Cpu)?;
/// let input = xai_models::preprocess::load_input("goldfish.jpg", model.input_spec(), model.device())?;
/// let logits = model.forward(&input.unsqueeze(0)?)?;
/// let features = model.forward_to(&input.unsqueeze(0)?, "layer4")?; // (1, 2048, 7, 7)
/// # Ok::<(), xai_models::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResNet {
    config: ResNetConfig,
    stem: ConvBn,
    blocks: Vec<Block>,
    fc: Linear,
    layers: Vec<LayerInfo>,
    /// For each entry of `layers`, the index of the unit whose output it is.
    layer_units: Vec<usize>,
    spec: InputSpec,
    labels: Labels,
    device: Device,
}

/// Parameter names that carry no weights (ignored when checking for unexpected tensors).
const IGNORED: [&str; 1] = ["num_batches_tracked"];

impl ResNet {
    /// Loads a ResNet of architecture `arch` (`resnet18` … `resnet152`) from a weights file
    /// (`.safetensors`, `.pth`, `.pth.tar`). The number of classes and the width are read from
    /// the weights; the labels are ImageNet's when there are 1000 classes.
    pub fn load(path: impl AsRef<Path>, arch: &str, device: &Device) -> Result<Self> {
        let config = ResNetConfig::from_arch(arch)?;
        let weights = WeightsFile::open(path, device)?;
        Self::from_weights(&weights, config, device)
    }

    /// Builds a ResNet with `config`'s block layout from loaded weights; `width` and
    /// `num_classes` are taken from the weights (`conv1.weight`, `fc.weight`).
    pub fn from_weights(
        weights: &WeightsFile,
        config: ResNetConfig,
        device: &Device,
    ) -> Result<Self> {
        let mut config = config;
        let arch = config.arch_name();
        let hint = ResNetConfig::detect(weights)
            .filter(|g| g.blocks != config.blocks || g.block != config.block)
            .map(|g| format!("the file looks like {}", g.arch_name()));
        let mut ck = weights.checkout(&arch);
        if let Some(shape) = ck.shape_of("conv1.weight") {
            config.width = shape[0];
        }
        if let Some(shape) = ck.shape_of("fc.weight") {
            config.num_classes = shape[0];
        }
        let w = config.width;
        let stem = ConvBn::load(&mut ck, "conv1", "bn1", (3, w, 7), 2, device)?;
        let mut blocks = Vec::new();
        let mut layers = vec![LayerInfo::spatial("maxpool", w)];
        let mut layer_units = vec![0];
        let mut in_ch = w;
        for stage in 0..4 {
            let planes = w << stage;
            let out_ch = config.stage_channels(stage);
            for b in 0..config.blocks[stage] {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let p = format!("layer{}.{b}", stage + 1);
                let shapes: Vec<(usize, usize, usize, usize)> = match config.block {
                    BlockKind::Basic => vec![(in_ch, planes, 3, stride), (planes, planes, 3, 1)],
                    BlockKind::Bottleneck => vec![
                        (in_ch, planes, 1, 1),
                        (planes, planes, 3, stride),
                        (planes, out_ch, 1, 1),
                    ],
                };
                let convs = shapes
                    .iter()
                    .enumerate()
                    .map(|(i, &(ci, co, k, s))| {
                        ConvBn::load(
                            &mut ck,
                            &format!("{p}.conv{}", i + 1),
                            &format!("{p}.bn{}", i + 1),
                            (ci, co, k),
                            s,
                            device,
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                let downsample = if stride != 1 || in_ch != out_ch {
                    Some(ConvBn::load(
                        &mut ck,
                        &format!("{p}.downsample.0"),
                        &format!("{p}.downsample.1"),
                        (in_ch, out_ch, 1),
                        stride,
                        device,
                    )?)
                } else {
                    None
                };
                blocks.push(Block { convs, downsample });
                layers.push(LayerInfo::spatial(p, out_ch));
                layer_units.push(blocks.len());
                in_ch = out_ch;
            }
            layers.push(LayerInfo::spatial(format!("layer{}", stage + 1), out_ch));
            layer_units.push(blocks.len());
        }
        let features = config.feature_channels();
        let fc_w = ck.take("fc.weight", &[config.num_classes, features])?;
        let fc_b = ck.take("fc.bias", &[config.num_classes])?;
        ck.finish(&IGNORED, hint)?;
        layers.push(LayerInfo::vector("avgpool", features));
        layer_units.push(blocks.len() + 1);
        layers.push(LayerInfo::vector("fc", config.num_classes));
        layer_units.push(blocks.len() + 2);
        let labels = if config.num_classes == 1000 {
            Labels::imagenet()
        } else {
            Labels::numbered(config.num_classes)
        };
        Ok(Self {
            fc: Linear::new(fc_w.to_device(device)?, Some(fc_b.to_device(device)?)),
            config,
            stem,
            blocks,
            layers,
            layer_units,
            spec: InputSpec::imagenet(),
            labels,
            device: device.clone(),
        })
    }

    /// The configuration, with width and classes as read from the weights.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// Replaces the class names (e.g. Places365's), which must match the number of classes.
    pub fn with_labels(mut self, labels: Labels) -> Result<Self> {
        if labels.len() != self.config.num_classes {
            return Err(Error::Parameter {
                name: "labels",
                reason: format!(
                    "{} labels given for a model with {} classes",
                    labels.len(),
                    self.config.num_classes
                ),
            });
        }
        self.labels = labels;
        Ok(self)
    }

    /// Replaces the input specification (e.g. for a model trained at another resolution).
    pub fn with_input_spec(mut self, spec: InputSpec) -> Self {
        self.spec = spec;
        self
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        match x.dims() {
            [_, 3, h, w] if *h >= 1 && *w >= 1 => Ok(()),
            dims => Err(Error::InputShape {
                what: "ResNet input".into(),
                actual: dims.to_vec(),
                expected: "(batch, 3, height, width)".into(),
            }),
        }
    }

    fn units(&self) -> usize {
        self.blocks.len() + 3
    }

    /// Runs units `from..to` (unit 0 is the stem, then the blocks, then avgpool and fc).
    fn run(
        &self,
        mut x: Tensor,
        from: usize,
        to: usize,
        mut keep: impl FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        let nb = self.blocks.len();
        for unit in from..to {
            x = match unit {
                0 => {
                    let y = self.stem.forward(&x, true)?;
                    if y.track_op() || matches!(self.stem, ConvBn::Packed(_)) {
                        // Differentiable (candle's pool cannot pass gradients back here), and
                        // on the CPU our parallel kernel.
                        crate::ops::max_pool2d(&y, 3, 2, 1)?
                    } else {
                        // Zero padding equals torchvision's -inf padding here: y ≥ 0 after ReLU.
                        y.pad_with_zeros(2, 1, 1)?
                            .pad_with_zeros(3, 1, 1)?
                            .max_pool2d_with_stride(3, 2)?
                    }
                }
                u if u <= nb => self.blocks[u - 1].forward(&x)?,
                u if u == nb + 1 => x.mean((2, 3))?,
                _ => self.fc.forward(&x)?,
            };
            keep(unit, &x);
        }
        Ok(x)
    }
}

impl Backbone for ResNet {
    fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    fn input_spec(&self) -> &InputSpec {
        &self.spec
    }

    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn forward_to(&self, input: &Tensor, layer: &str) -> Result<Tensor> {
        self.check_input(input)?;
        let unit = self.layer_units[self.layer_index(layer)?];
        self.run(input.clone(), 0, unit + 1, |_, _| {})
    }

    fn forward_from(&self, activation: &Tensor, layer: &str) -> Result<Tensor> {
        let index = self.layer_index(layer)?;
        self.layers[index].check_activation(activation)?;
        let unit = self.layer_units[index];
        self.run(activation.clone(), unit + 1, self.units(), |_, _| {})
    }

    fn forward_to_many(&self, input: &Tensor, layers: &[&str]) -> Result<Vec<Tensor>> {
        self.check_input(input)?;
        let units = layers
            .iter()
            .map(|l| Ok(self.layer_units[self.layer_index(l)?]))
            .collect::<Result<Vec<_>>>()?;
        let Some(&last) = units.iter().max() else {
            return Ok(Vec::new());
        };
        let mut kept: Vec<Option<Tensor>> = vec![None; self.units()];
        self.run(input.clone(), 0, last + 1, |u, t| {
            if units.contains(&u) {
                kept[u] = Some(t.clone());
            }
        })?;
        units
            .iter()
            .map(|&u| {
                kept[u].clone().ok_or_else(|| Error::Parameter {
                    name: "layers",
                    reason: "internal: a requested layer was not reached".into(),
                })
            })
            .collect()
    }
}
