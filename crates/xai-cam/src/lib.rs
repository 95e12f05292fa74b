//! # xai-cam
//!
//! Class activation maps for any [`xai_models::Backbone`], with pytorch-grad-cam's semantics
//! (the same maps on the same weights and inputs; see `docs/PARITY.md`).
//!
//! What is implemented, each a small type on one shared driver ([`Cam`]):
//!
//! | method | type | needs |
//! |---|---|---|
//! | Grad-CAM | [`GradCam`] | gradients |
//! | Grad-CAM++ | [`GradCamPlusPlus`] | gradients |
//! | XGrad-CAM | [`XGradCam`] | gradients |
//! | HiResCAM | [`HiResCam`] | gradients |
//! | LayerCAM | [`LayerCam`] | gradients |
//! | EigenCAM | [`EigenCam`] | activations |
//! | EigenGradCAM | [`EigenGradCam`] | gradients |
//! | AblationCAM | [`AblationCam`] | the network after the target layer, on ablated activations |
//! | ScoreCAM | [`ScoreCam`] | the network, on masked inputs |
//!
//! Also: several target layers (averaged as the reference does), any [`xai_models::Target`]
//! ([`Targets`]), batches, `eigen_smooth` ([`Cam::with_eigen_smooth`]) and test-time
//! augmentation smoothing ([`Cam::compute_aug_smooth`]); the raw maps ([`CamResult`]) and the
//! normalised ones ([`CamResult::normalise`], a named step); `.npy`, greyscale PNG, the
//! reference's jet overlay and binary masks ([`render`]).
//!
//! ## Quick start
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use xai_cam::{render, Cam, GradCam, Targets};
//!
//! // Random weights stand in for a real checkpoint (`xai_models::ResNet::load`).
//! let dev = Device::Cpu;
//! let model = xai_models::testing::random_resnet(
//!     xai_models::ResNetConfig::resnet18().with_width(8).with_classes(10), 0, &dev)?;
//! let x = Tensor::randn(0f32, 1.0, (1, 3, 64, 64), &dev)?;
//!
//! let cam = Cam::new(&model, GradCam)?.compute(&x, &Targets::TopClass)?;
//! let raw = &cam.layers[0].raw;           // (1, 2, 2): layer4, before the ReLU
//! let map = cam.normalise();              // (1, 64, 64) in [0, 1)
//! assert_eq!(raw.dim(), (1, 2, 2));
//! let gray = render::gray_image(map.index_axis(ndarray::Axis(0), 0));
//! assert_eq!(gray.dimensions(), (64, 64));
//! # Ok::<(), xai_cam::Error>(())
//! ```
//!
//! Notes for contributors: gradients come from `forward_to` → [`candle_core::Var`] →
//! `forward_from` → `backward`, never hooks; post-processing runs on the host in f32 in the
//! reference's order, since min-max scaling amplifies tiny differences.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cam;
pub mod eigen;
mod error;
pub mod map;
mod method;
mod methods;
pub mod render;
mod targets;

pub use cam::{Cam, CamResult, LayerMap};
pub use eigen::EigenSign;
pub use error::{Error, Result};
pub use method::{CamMethod, LayerContext, Method, Needs, Progress};
pub use methods::{
    AblationCam, AblationWeights, EigenCam, EigenGradCam, GradCam, GradCamPlusPlus, HiResCam,
    LayerCam, ScoreCam, XGradCam,
};
pub use targets::{ImageTargets, Targets};
pub use xai_models::Backbone;
