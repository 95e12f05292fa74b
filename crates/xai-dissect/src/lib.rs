//! # xai-dissect
//!
//! Network dissection for any [`xai_models::Backbone`]:
//!
//! - [`similarity`]: CLIP-Dissect's five similarity functions (soft-WPMI, WPMI, cos, cos³,
//!   rank reorder) from the concept-similarity matrix `S` and the pooled activations `A`,
//!   with the reference's defaults; parity with the reference's code to 1e-5.
//! - [`scorer`]: where `S` comes from ([`ConceptSimilarity`]): precomputed embeddings, or the
//!   test world's ground-truth concept annotations (the offline stand-in for CLIP).
//! - [`activations`]: activations of named layers over a [`ProbeSet`], pooled per unit.
//! - [`broden`]: Broden-style probe folders (NetDissect's `index.csv` / `label.csv` layout)
//!   as probe images with per-pixel concept masks, for the IoU method of [`netdissect`].
//! - [`dissect`](mod@dissect): the best concept per unit, its score, runners-up and top images,
//!   as a [`Dissection`].
//!
//! ```
//! use ndarray::array;
//! use xai_dissect::{dissect::{label_layer, LabelConfig}, similarity::Similarity};
//! let s = array![[0.9f32, 0.1], [0.2, 0.8], [0.8, 0.3]];
//! let a = array![[1.0f32, 0.0], [0.0, 2.0], [0.9, 0.1]];
//! let concepts = vec!["red".to_string(), "sky".to_string()];
//! let config = LabelConfig { similarity: Similarity::Cos, ..Default::default() };
//! let labels = label_layer("fc", s.view(), a.view(), &concepts, &[], &config)?;
//! assert_eq!((labels[0].concept.as_str(), labels[1].concept.as_str()), ("red", "sky"));
//! # Ok::<(), xai_dissect::Error>(())
//! ```

pub mod activations;
pub mod broden;
pub mod cache;
pub mod clip_similarity;
mod concepts;
pub mod dissect;
mod error;
mod label;
pub mod netdissect;
pub mod probe;
pub mod report;
pub mod scorer;
pub mod similarity;

pub use activations::Pooling;
pub use concepts::ConceptSet;
pub use error::{Error, Result};
pub use label::{ConceptScore, Dissection, NeuronLabel, TopImage};
pub use probe::{ProbeSet, IMAGE_EXTENSIONS};
pub use scorer::ConceptSimilarity;
pub use similarity::Similarity;
pub use xai_models::Backbone;
