//! The CLIP façade: one image tower (ViT or modified ResNet) and the text tower, loaded from an
//! OpenAI/open_clip or Hugging Face checkpoint.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::{Device, Tensor};

use super::hf::{hf_to_openai, is_hf_layout, HfClipConfig};
use super::{Activation, ModifiedResNet, TextTransformer, VisionTransformer};
use crate::{Error, Result, WeightsFile};

/// Tensor names that CLIP checkpoints carry and the towers do not use.
const IGNORED: [&str; 4] = [
    "logit_scale",
    "position_ids",
    "num_batches_tracked",
    "attn_mask",
];

/// The CLIP architectures xai knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClipArch {
    /// The modified ResNet-50 image tower (embed 1024, input 224).
    Rn50,
    /// ViT-B/32: width 768, 12 layers, patch 32, input 224, embed 512.
    VitB32,
    /// ViT-B/16: width 768, 12 layers, patch 16, input 224, embed 512.
    VitB16,
}

impl ClipArch {
    /// Every known architecture.
    pub const ALL: [ClipArch; 3] = [Self::Rn50, Self::VitB32, Self::VitB16];

    /// The OpenAI name: `RN50`, `ViT-B/32`, `ViT-B/16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rn50 => "RN50",
            Self::VitB32 => "ViT-B/32",
            Self::VitB16 => "ViT-B/16",
        }
    }

    /// Parses an OpenAI name, case-insensitively; open_clip's spelling with `-` for `/`
    /// (`ViT-B-32`) is accepted too.
    ///
    /// ```
    /// use xai_models::clip::ClipArch;
    /// assert_eq!(ClipArch::parse("vit-b/32")?, ClipArch::VitB32);
    /// assert_eq!(ClipArch::parse("ViT-B-16")?, ClipArch::VitB16);
    /// assert!(ClipArch::parse("ViT-L/14").unwrap_err().to_string().contains("RN50, ViT-B/32, ViT-B/16"));
    /// # Ok::<(), xai_models::Error>(())
    /// ```
    pub fn parse(name: &str) -> Result<Self> {
        let norm = |s: &str| s.trim().to_ascii_lowercase().replace('/', "-");
        Self::ALL
            .into_iter()
            .find(|a| norm(a.name()) == norm(name))
            .ok_or_else(|| Error::UnknownArch {
                name: name.to_string(),
                known: Self::ALL.iter().map(|a| a.name().to_string()).collect(),
            })
    }
}

impl fmt::Display for ClipArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ClipArch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// How a checkpoint is read where its tensors do not say it.
///
/// Each `None` means: what a Hugging Face `config.json` beside the weights says, if there is
/// one, else CLIP's convention (QuickGELU, 64-wide heads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClipOptions {
    /// The MLP non-linearity of both transformers. OpenAI's weights (and CLIP-Dissect) use
    /// [`Activation::QuickGelu`], the default; LAION's open_clip ViT-B-32 uses
    /// [`Activation::Gelu`].
    pub activation: Option<Activation>,
    /// Attention heads of the image tower (default width / 64).
    pub vision_heads: Option<usize>,
    /// Attention heads of the text tower (default width / 64).
    pub text_heads: Option<usize>,
}

impl ClipOptions {
    /// Sets the MLP non-linearity.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = Some(activation);
        self
    }

    /// Sets the image tower's head count.
    pub fn with_vision_heads(mut self, heads: usize) -> Self {
        self.vision_heads = Some(heads);
        self
    }

    /// Sets the text tower's head count.
    pub fn with_text_heads(mut self, heads: usize) -> Self {
        self.text_heads = Some(heads);
        self
    }
}

/// The layout a checkpoint was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClipLayout {
    /// OpenAI's `clip` and open_clip's `CLIP` (`visual.*`, `transformer.*`, …).
    OpenAi,
    /// Hugging Face `transformers`' `CLIPModel` (`vision_model.*`, `text_model.*`).
    HuggingFace,
}

/// CLIP's image tower.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ImageTower {
    /// A Vision Transformer (ViT-B/32, ViT-B/16, …).
    Vit(VisionTransformer),
    /// The modified ResNet (RN50, …).
    ResNet(Box<ModifiedResNet>),
}

impl ImageTower {
    /// `(N, 3, S, S)` normalised pixels → `(N, E)` image embeddings.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        match self {
            Self::Vit(v) => v.forward(pixels),
            Self::ResNet(r) => r.forward(pixels),
        }
    }

    /// The square input size.
    pub fn image_size(&self) -> usize {
        match self {
            Self::Vit(v) => v.image_size(),
            Self::ResNet(r) => r.image_size(),
        }
    }

    /// The width of the image embedding.
    pub fn embed_dim(&self) -> usize {
        match self {
            Self::Vit(v) => v.embed_dim(),
            Self::ResNet(r) => r.embed_dim(),
        }
    }
}

/// A CLIP model: image and text towers that embed into one space.
///
/// Loads OpenAI (`clip.load`'s state dict), open_clip (`CLIP` with OpenAI names) and Hugging
/// Face `CLIPModel` checkpoints (safetensors or `.pt`/`.pth`), ViT or RN50. The layout is told
/// from the tensor names, every size from the tensor shapes; missing, mis-shaped and
/// unexpected tensors are reported together in one error.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_models::clip::Clip;
/// use xai_models::testing::{random_clip_vit, ClipVitSizes};
///
/// // Random weights stand in for a real checkpoint: `Clip::load("ViT-B-32.safetensors", &dev)`.
/// let dev = Device::Cpu;
/// let sizes = ClipVitSizes::tiny();
/// let clip: Clip = random_clip_vit(&sizes, 0, &dev)?;
/// let s = clip.image_size();
/// let pixels = Tensor::randn(0f32, 1.0, (2, 3, s, s), &dev)?;
/// let images = clip.encode_image(&pixels)?;                 // (2, embed)
/// // Start token, two words, end token (the largest id), then zero padding.
/// let mut ids = vec![0u32; clip.context_length()];
/// ids[..4].copy_from_slice(&[98, 5, 7, 99]);
/// let texts = clip.encode_text(&Tensor::from_vec(ids, (1, clip.context_length()), &dev)?)?;
/// assert_eq!(images.dims(), &[2, clip.embed_dim()]);
/// assert_eq!(texts.dims(), &[1, clip.embed_dim()]);
/// # Ok::<(), xai_models::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Clip {
    visual: ImageTower,
    text: TextTransformer,
    layout: ClipLayout,
    path: PathBuf,
}

impl Clip {
    /// Reads a CLIP checkpoint with the default [`ClipOptions`].
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Self::load_with(path, ClipOptions::default(), device)
    }

    /// Reads a CLIP checkpoint.
    pub fn load_with(
        path: impl AsRef<Path>,
        options: ClipOptions,
        device: &Device,
    ) -> Result<Self> {
        let weights = WeightsFile::open(path, device)?;
        Self::from_weights(&weights, options, device)
    }

    /// Builds the model from tensors already read. For the Hugging Face layout, a
    /// `config.json` in the folder of [`WeightsFile::path`] supplies the activation and head
    /// counts that `options` leaves open.
    pub fn from_weights(
        weights: &WeightsFile,
        options: ClipOptions,
        device: &Device,
    ) -> Result<Self> {
        let has = |n: &str| weights.get(n).is_some();
        let (layout, converted, config) = if is_hf_layout(weights) {
            let config = HfClipConfig::beside(weights.path())?;
            (
                ClipLayout::HuggingFace,
                Some(hf_to_openai(weights)?),
                config,
            )
        } else if has("visual.class_embedding") || has("visual.attnpool.positional_embedding") {
            (ClipLayout::OpenAi, None, None)
        } else {
            let names = weights.names();
            let mut first: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
            if names.len() > first.len() {
                first.push(format!("… ({} tensors)", names.len()));
            }
            return Err(Error::WeightsFormat {
                path: weights.path().into(),
                reason: format!(
                    "not a CLIP checkpoint: it has neither `visual.class_embedding` (ViT), \
                     `visual.attnpool.positional_embedding` (RN50) nor `vision_model.*` \
                     (Hugging Face CLIPModel) tensors; its first tensors are {}",
                    first.join(", ")
                ),
            });
        };
        let file = converted.as_ref().unwrap_or(weights);
        let vision_act = options
            .activation
            .or(config.map(|c| c.vision_activation))
            .unwrap_or_default();
        let text_act = options
            .activation
            .or(config.map(|c| c.text_activation))
            .unwrap_or_default();
        let vision_heads = options.vision_heads.or(config.map(|c| c.vision_heads));
        let text_heads = options.text_heads.or(config.map(|c| c.text_heads));

        let is_resnet = file.get("visual.attnpool.positional_embedding").is_some();
        let arch = if is_resnet {
            "CLIP modified ResNet"
        } else {
            "CLIP ViT"
        };
        let mut ck = file.checkout(arch);
        let visual = if is_resnet {
            ImageTower::ResNet(Box::new(ModifiedResNet::from_checkout(
                &mut ck,
                "visual.",
                vision_heads,
                device,
            )?))
        } else {
            ImageTower::Vit(VisionTransformer::from_checkout(
                &mut ck,
                "visual.",
                vision_heads,
                vision_act,
                device,
            )?)
        };
        let text = TextTransformer::from_checkout(&mut ck, text_heads, text_act, device)?;
        let hint = (layout == ClipLayout::HuggingFace).then(|| {
            "read as a Hugging Face CLIPModel; the names are the OpenAI equivalents of its tensors"
                .to_string()
        });
        ck.finish(&IGNORED, hint)?;
        if visual.embed_dim() != text.embed_dim() {
            return Err(Error::TensorShape {
                path: weights.path().into(),
                arch: arch.into(),
                name: "text_projection".into(),
                expected: [text.width(), visual.embed_dim()].into(),
                actual: [text.width(), text.embed_dim()].into(),
            });
        }
        Ok(Self {
            visual,
            text,
            layout,
            path: weights.path().into(),
        })
    }

    /// `(N, 3, S, S)` preprocessed pixels (see [`preprocess`](super::preprocess)), `S` =
    /// [`image_size`](Self::image_size) → `(N, E)` image embeddings (not normalised).
    pub fn encode_image(&self, pixels: &Tensor) -> Result<Tensor> {
        self.visual.forward(pixels)
    }

    /// `(N, context)` token ids (u32 or i64, from
    /// [`ClipTokenizer::tokenize_tensor`](super::ClipTokenizer::tokenize_tensor)) → `(N, E)`
    /// text embeddings (not normalised).
    pub fn encode_text(&self, ids: &Tensor) -> Result<Tensor> {
        self.text.forward(ids)
    }

    /// The square input size of the image tower (224 for the OpenAI models).
    pub fn image_size(&self) -> usize {
        self.visual.image_size()
    }

    /// The width of the joint embedding.
    pub fn embed_dim(&self) -> usize {
        self.visual.embed_dim()
    }

    /// The text context length (77).
    pub fn context_length(&self) -> usize {
        self.text.context_length()
    }

    /// The image tower.
    pub fn visual(&self) -> &ImageTower {
        &self.visual
    }

    /// The text tower.
    pub fn text(&self) -> &TextTransformer {
        &self.text
    }

    /// The layout the checkpoint was in.
    pub fn layout(&self) -> ClipLayout {
        self.layout
    }

    /// The known architecture these shapes are, if any.
    pub fn arch(&self) -> Option<ClipArch> {
        match &self.visual {
            ImageTower::Vit(v) => {
                let b = v.width() == 768
                    && v.layers() == 12
                    && v.image_size() == 224
                    && v.embed_dim() == 512;
                match v.patch_size() {
                    32 if b => Some(ClipArch::VitB32),
                    16 if b => Some(ClipArch::VitB16),
                    _ => None,
                }
            }
            ImageTower::ResNet(r) => {
                (r.embed_dim() == 1024 && r.image_size() == 224).then_some(ClipArch::Rn50)
            }
        }
    }

    /// `ViT-B/32`, `ViT-B/16`, `RN50` for those shapes, else a description of the image tower.
    pub fn arch_name(&self) -> String {
        if let Some(a) = self.arch() {
            return a.name().to_string();
        }
        match &self.visual {
            ImageTower::Vit(v) => format!(
                "ViT (width {}, {} layers, patch {}, input {}, embed {})",
                v.width(),
                v.layers(),
                v.patch_size(),
                v.image_size(),
                v.embed_dim()
            ),
            ImageTower::ResNet(r) => format!(
                "modified ResNet (input {}, embed {})",
                r.image_size(),
                r.embed_dim()
            ),
        }
    }

    /// An error naming both when the loaded checkpoint is not `expected` (e.g. the
    /// architecture a user asked for on the command line).
    pub fn check_arch(&self, expected: ClipArch) -> Result<()> {
        if self.arch() == Some(expected) {
            return Ok(());
        }
        Err(Error::ArchMismatch {
            path: self.path.clone(),
            requested: expected.name().to_string(),
            found: self.arch_name(),
        })
    }
}
