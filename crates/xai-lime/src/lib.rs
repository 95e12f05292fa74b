//! # xai-lime
//!
//! LIME for images: quickshift, SLIC and felzenszwalb superpixels, perturbation sampling, a weighted ridge surrogate and a parameter search, with lime's and scikit-image's semantics.
//!
//! **Status:** this crate is part of the workspace layout from the start so that the
//! workspace, its features and the facade are stable; its methods land in a later change.
//! Until then it exposes nothing but the backbone trait it builds on.

pub use xai_models::Backbone;
