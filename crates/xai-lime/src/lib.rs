//! # xai-lime
//!
//! LIME for images: quickshift, SLIC and felzenszwalb superpixels, perturbation sampling, a
//! weighted ridge surrogate and a parameter search, with lime's and scikit-image's semantics.

pub mod boundaries;
mod error;
pub mod segment;

pub use error::{Error, Result};
pub use segment::{image_to_float, Felzenszwalb, Quickshift, SegmentMethod, Segmenter, Slic};
pub use xai_models::Backbone;
