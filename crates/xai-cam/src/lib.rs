//! # xai-cam
//!
//! Class activation maps for any [`xai_models::Backbone`]: Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, EigenCAM, EigenGradCAM, AblationCAM and ScoreCAM, with pytorch-grad-cam's semantics.
//!
//! **Status:** this crate is part of the workspace layout from the start so that the
//! workspace, its features and the facade are stable; its methods land in a later change.
//! Until then it exposes nothing but the backbone trait it builds on.

pub use xai_models::Backbone;
