//! # xai-metrics
//!
//! Metrics that judge explanations: pure functions on maps (`ArrayView2<f32>`) and masks
//! (`ArrayView2<bool>`), plus a model and a target where the metric needs one.
//!
//! | family | what | functions |
//! |---|---|---|
//! | binarisation | fixed threshold, top-k % or top-n pixels, Otsu — always stated | [`Binarize`] |
//! | agreement | IoU, Dice, Spearman rank correlation, IoU over a sweep of thresholds | [`iou`], [`dice`], [`spearman`], [`iou_curve`] |
//! | localisation | pointing game (with tolerance), energy-based pointing game, IoU with the object | [`pointing_game`], [`energy_pointing_game`], [`mask_iou`], [`score_map`] |
//! | faithfulness | deletion / insertion curves and AUC (RISE) | [`deletion`], [`insertion`] |
//! | | confidence change on `image ⊙ map`, drop / increase in confidence, average drop (Grad-CAM++) | [`ConfidenceScores`] |
//! | | ROAD (MoRF, LeRF, combined) with the noisy linear imputer | [`road`] |
//!
//! The model metrics match pytorch-grad-cam's `metrics` module on the same model, input and
//! map (`docs/PARITY.md`, "Metrics"); its `'auto'` ROAD percentile, whose Otsu mask has the
//! opposite polarity, is not copied, and an imputation with no known pixel is an error
//! instead of NaN.
//!
//! ## Quick start
//!
//! ```
//! use ndarray::Array2;
//! use xai_metrics::{iou, spearman, Binarize};
//!
//! let a = Array2::from_shape_fn((16, 16), |(r, c)| (r + c) as f32 / 30.0);
//! let b = Array2::from_shape_fn((16, 16), |(r, c)| (r + 2 * c) as f32 / 45.0);
//! let rule: Binarize = "top:20".parse()?;
//! let agreement = iou(rule.apply(a.view())?.view(), rule.apply(b.view())?.view())?;
//! assert!(agreement > 0.5 && agreement < 1.0);
//! assert!(spearman(a.view(), b.view())? > 0.9);
//! # Ok::<(), xai_metrics::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod agreement;
mod binarize;
mod error;
mod faithfulness;
mod localisation;
pub mod road;
pub mod sanity;

pub use agreement::{dice, iou, iou_curve, spearman, thresholds, top_percents};
pub use binarize::Binarize;
pub use error::{Error, Result};
pub use faithfulness::{
    auc, deletion, gaussian_blur, insertion, ConfidenceScores, Curve, DeletionConfig,
};
pub use localisation::{
    argmax, energy_in_mask, energy_pointing_game, mask_iou, pointing_game, score_map,
    LocalisationScores,
};
pub use road::{NoisyLinearImputer, Road, RoadCombined, RoadOrder, RoadScores, Unanchored};
pub use xai_models::Backbone;
