//! # xai-lime
//!
//! LIME for images (Ribeiro et al., 2016) with lime's and scikit-image's semantics:
//!
//! - [`segment`]: quickshift, SLIC and felzenszwalb superpixels;
//! - [`LimeImageExplainer`]: seeded perturbation sampling (NumPy's `RandomState` draws, so a
//!   seed reproduces lime's sample matrix), mean-colour or fixed-colour hiding, cosine
//!   distances with an exponential kernel, and a weighted ridge surrogate per label with
//!   lime's feature-selection modes ([`FeatureSelection`]);
//! - [`ImageExplanation`]: masks for a label (positive / negative / both, top n, minimum
//!   weight, rest hidden);
//! - [`Classifier`]: what is explained — any batch scorer; [`BackboneClassifier`] makes one
//!   of any xai backbone.

pub mod boundaries;
mod classifier;
mod error;
pub mod explain;
pub mod pickle;
pub mod random;
pub mod render;
pub mod ridge;
pub mod search;
pub mod segment;
pub mod selection;

pub use classifier::{BackboneClassifier, Classifier, ScoreKind};
pub use error::{Error, Result};
pub use explain::{
    HideColor, ImageExplanation, LabelChoice, LimeConfig, LimeImageExplainer, LocalExplanation,
    MaskOptions, Progress, ScoredSamples, Superpixels,
};
pub use segment::{image_to_float, Felzenszwalb, Quickshift, SegmentMethod, Segmenter, Slic};
pub use selection::FeatureSelection;
pub use xai_models::Backbone;
