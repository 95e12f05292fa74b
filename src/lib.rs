//! # xai — explainability for vision models, in Rust
//!
//! The facade of the xai workspace: it re-exports the crates and offers
//! [`zoo`], which turns an architecture name and a weights file into a ready
//! [`Backbone`](models::Backbone). The `xai` command-line tool is built from this package.
//!
//! | crate | what it holds |
//! |---|---|
//! | [`models`] (`xai-models`) | the `Backbone` and `Target` traits, ResNets, weights, preprocessing, labels |
//! | [`cam`] (`xai-cam`) | the CAM family |
//! | [`lime`] (`xai-lime`) | LIME with superpixels and parameter search |
//! | [`dissect`] (`xai-dissect`) | CLIP-Dissect and Network Dissection |
//! | [`metrics`] (`xai-metrics`) | agreement, localisation and faithfulness metrics, reports |
//! | [`testworld`] (`xai-testworld`) | procedural scenes with ground truth, and the small models trained on them |
//!
//! ```
//! use xai::models::Backbone;
//! let model = xai::zoo::load(None, None, &xai::models::candle_core::Device::Cpu)?;
//! let x = xai::models::candle_core::Tensor::zeros((1, 3, 64, 64), xai::models::candle_core::DType::F32, model.device())?;
//! assert_eq!(model.forward(&x)?.dims()[0], 1);
//! # Ok::<(), xai::models::Error>(())
//! ```

pub use xai_cam as cam;
pub use xai_dissect as dissect;
pub use xai_lime as lime;
pub use xai_metrics as metrics;
pub use xai_models as models;
pub use xai_testworld as testworld;

pub mod zoo;
