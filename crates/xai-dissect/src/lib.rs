//! # xai-dissect
//!
//! Network dissection for any [`xai_models::Backbone`]: CLIP-Dissect (CLIP embeddings of a probe set and a concept set, soft-WPMI and friends) and the IoU-based Network Dissection of Bau et al.
//!
//! **Status:** this crate is part of the workspace layout from the start so that the
//! workspace, its features and the facade are stable; its methods land in a later change.
//! Until then it exposes nothing but the backbone trait it builds on.

pub use xai_models::Backbone;
