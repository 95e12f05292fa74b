//! # xai-models
//!
//! The shared ground of xai: the [`Backbone`] trait that every explanation method plugs
//! into, the [`Target`] trait that says what is explained, and the backbones themselves.
//!
//! What is here:
//! - [`Backbone`]: named layers ([`LayerInfo`], [`Layout`]), `forward_to` / `forward_from`
//!   a named layer, input spec and labels.
//! - [`Target`]: [`ClassLogit`], [`ClassProbability`], [`PerImageClassLogit`], or any closure.
//! - [`ResNet`]: ResNet 18/34/50/101/152 with torchvision's parameter names; loads
//!   torchvision and Places365 checkpoints.
//! - [`weights`]: safetensors, PyTorch `.pth` (zip and legacy), with checks that name the
//!   missing, unexpected or mis-shaped tensor; [`source`]: where weights are looked up.
//! - [`conv`]: the CPU convolution and max-pool kernels under [`ResNet`] (weights packed at
//!   load time, `gemm` products with bias, residual and ReLU fused, input gradients).
//! - [`preprocess`]: torchvision's evaluation transform, bit-exact with Pillow's resize.
//! - [`clip`]: CLIP ([`clip::Clip`]): ViT and RN50 image towers, the text tower, OpenAI,
//!   open_clip and Hugging Face checkpoints, CLIP's image transform, the BPE tokenizer
//!   ([`clip::ClipTokenizer`]).
//! - [`Labels`]: ImageNet-1k built in, Places365 and plain label files.
//!
//! ## Quick start
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use xai_models::{Backbone, ClassLogit, ResNet, ResNetConfig, Target};
//!
//! // Random weights stand in for a real checkpoint here; `ResNet::load(path, "resnet18", &dev)`
//! // reads a torchvision file.
//! let dev = Device::Cpu;
//! let model = xai_models::testing::random_resnet(ResNetConfig::resnet18().with_width(8).with_classes(10), 0, &dev)?;
//! let x = Tensor::randn(0f32, 1.0, (1, 3, 64, 64), &dev)?;
//! let features = model.forward_to(&x, "layer4")?;           // (1, 64, 2, 2)
//! let logits = model.forward_from(&features, "layer4")?;    // (1, 10)
//! let score = ClassLogit(3).score(&logits)?;                // (1,)
//! assert_eq!(features.dims(), &[1, 64, 2, 2]);
//! assert_eq!(score.dims(), &[1]);
//! # Ok::<(), xai_models::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backbone;
pub mod clip;
pub mod conv;
mod conv_bn;
mod error;
mod labels;
mod layer;
pub mod ops;
pub mod preprocess;
mod resnet;
pub mod simd;
pub mod source;
mod spec;
mod target;
pub mod testing;
pub mod weights;

pub use backbone::Backbone;
pub use error::{Error, Result};
pub use labels::Labels;
pub use layer::{LayerInfo, Layout};
pub use resnet::{BlockKind, ResNet, ResNetConfig, RESNET_ARCHS};
pub use spec::InputSpec;
pub use target::{ClassLogit, ClassProbability, PerImageClassLogit, Target};
pub use weights::WeightsFile;

/// Re-exported so users need not depend on candle directly for the basics.
pub use candle_core;
