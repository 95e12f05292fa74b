//! # xai-dissect
//!
//! Network dissection for any [`xai_models::Backbone`]: CLIP-Dissect (CLIP embeddings of a probe set and a concept set, soft-WPMI and friends) and the IoU-based Network Dissection of Bau et al.
//!
//! **Status:** the result types ([`Dissection`], [`NeuronLabel`]) are in place; the methods
//! land in the following changes.

mod label;
pub mod report;

pub use label::{ConceptScore, Dissection, NeuronLabel, TopImage};
pub use xai_models::Backbone;
