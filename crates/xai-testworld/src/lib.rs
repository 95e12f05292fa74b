//! # xai-testworld
//!
//! A small procedural world where the truth is known, so that xai runs offline and
//! explanation quality is measured rather than eyeballed.
//!
//! - [`scene`]: seeded, deterministic RGB scenes — a textured background *scene kind* and
//!   foreground *objects* drawn from parts — with per-pixel masks of every object instance
//!   and of every concept (colours, parts, textures, scene kinds).
//! - [`train`]: the two classifiers of the world (`objects`, `scenes`), ResNet-18-structured
//!   networks trained here with candle, and their held-out evaluation.
//! - [`pretrained`]: the committed, trained models, built into the crate.
//! - [`benchmark`]: scoring any explanation method against the true object masks (pointing
//!   game, energy in mask, IoU).

pub mod benchmark;
mod error;
pub mod pretrained;
pub mod scene;
pub mod train;

pub use error::TestWorldError;
pub use scene::{Concept, ConceptKind, Mask, ObjectKind, Scene, SceneConfig, SceneKind};
pub use train::{Task, TrainConfig, TrainProgress};
