//! # xai-metrics
//!
//! Metrics for explanations: agreement (IoU, Dice, rank correlation), localisation (pointing game), faithfulness (deletion/insertion, ROAD, confidence change) and comparison reports.
//!
//! **Status:** this crate is part of the workspace layout from the start so that the
//! workspace, its features and the facade are stable; its methods land in a later change.
//! Until then it exposes nothing but the backbone trait it builds on.

pub use xai_models::Backbone;
