//! Parameter search: the LIME settings whose masks best match reference masks.
//!
//! The seed task tuned LIME by hand for the best IoU against a leaderboard's masks and handed
//! in the parameters as a pickle. Here the search is a function: candidate segmentations,
//! sample counts, kernel widths, hide colours and mask sizes; a grid or a seeded random subset
//! of it; the mean IoU between each image's LIME mask (positive superpixels, top `k`) and its
//! reference mask (ground truth, or another method's mask such as a thresholded Grad-CAM).
//!
//! Work is shared where the result allows it: each image is segmented once per segmentation,
//! its perturbed samples are scored once per (segmentation, hide colour) with the largest
//! sample count asked for — smaller counts are prefixes of the same seeded draws, which give
//! exactly the run with fewer samples — and only the surrogates are refitted per kernel width.

use std::collections::BTreeMap;

use image::RgbImage;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::explain::{HideColor, LabelChoice, LimeConfig, LimeImageExplainer, MaskOptions};
use crate::random::NumpyRandomState;
use crate::segment::{Felzenszwalb, Quickshift, SegmentMethod, Segmenter, Slic};
use crate::selection::FeatureSelection;
use crate::{image_to_float, Classifier, Error, Result};

/// One image of the search: what to explain, and the mask the explanation should match.
#[derive(Debug, Clone)]
pub struct SearchCase {
    /// A name for reports (the file stem).
    pub name: String,
    /// The image at the classifier's input size.
    pub image: RgbImage,
    /// The reference mask, `(height, width)`, true inside.
    pub reference: Array2<bool>,
    /// The label to explain; `None` for the classifier's top-1 label.
    pub label: Option<usize>,
}

/// The values tried for each setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// Segmentations (method and parameters).
    pub segmentations: Vec<SegmentMethod>,
    /// Sample counts.
    pub num_samples: Vec<usize>,
    /// Kernel widths.
    pub kernel_widths: Vec<f64>,
    /// Hide colours.
    pub hide_colors: Vec<HideColor>,
    /// Superpixels in the mask (`get_image_and_mask(num_features=k)`).
    pub num_features: Vec<usize>,
}

impl Default for SearchSpace {
    /// 12 segmentations × 2 sample counts × 3 kernel widths × 2 hide colours × 4 mask sizes.
    fn default() -> Self {
        let mut segmentations = Vec::new();
        for (kernel_size, ratio) in [(2.0, 0.2), (4.0, 0.2), (4.0, 0.5), (6.0, 0.2)] {
            segmentations.push(SegmentMethod::Quickshift(Quickshift {
                kernel_size,
                ratio,
                ..Quickshift::default()
            }));
        }
        for (n_segments, compactness) in [(25, 10.0), (50, 10.0), (100, 10.0), (50, 30.0)] {
            segmentations.push(SegmentMethod::Slic(Slic {
                n_segments,
                compactness,
                ..Slic::default()
            }));
        }
        for (scale, min_size) in [(50.0, 20), (100.0, 50), (200.0, 50), (400.0, 100)] {
            segmentations.push(SegmentMethod::Felzenszwalb(Felzenszwalb {
                scale,
                min_size,
                ..Felzenszwalb::default()
            }));
        }
        Self {
            segmentations,
            num_samples: vec![300, 1000],
            kernel_widths: vec![0.1, 0.25, 0.5],
            hide_colors: vec![HideColor::Mean, HideColor::Rgb([0, 0, 0])],
            num_features: vec![3, 5, 8, 12],
        }
    }
}

impl SearchSpace {
    /// Every combination, in a fixed order.
    pub fn grid(&self) -> Vec<LimeParams> {
        let mut out = Vec::new();
        for seg in &self.segmentations {
            for &hide_color in &self.hide_colors {
                for &num_samples in &self.num_samples {
                    for &kernel_width in &self.kernel_widths {
                        for &num_features in &self.num_features {
                            out.push(LimeParams {
                                segmentation: seg.clone(),
                                num_samples,
                                kernel_width,
                                hide_color,
                                num_features,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    fn validate(&self) -> Result<()> {
        let empty = |name: &'static str, len: usize| {
            if len == 0 {
                Err(Error::param(name, "the search space gives no value to try"))
            } else {
                Ok(())
            }
        };
        empty("segmentations", self.segmentations.len())?;
        empty("num_samples", self.num_samples.len())?;
        empty("kernel_widths", self.kernel_widths.len())?;
        empty("hide_colors", self.hide_colors.len())?;
        empty("num_features", self.num_features.len())?;
        for s in &self.segmentations {
            s.validate()?;
        }
        Ok(())
    }
}

/// One point of the search space: the settings a LIME mask is made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimeParams {
    /// How superpixels are made.
    pub segmentation: SegmentMethod,
    /// Perturbed samples.
    pub num_samples: usize,
    /// Width of the exponential kernel.
    pub kernel_width: f64,
    /// What hidden superpixels become.
    pub hide_color: HideColor,
    /// Superpixels in the mask.
    pub num_features: usize,
}

/// How the search space is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every combination.
    Grid,
    /// `trials` combinations drawn without replacement (seeded).
    Random {
        /// How many combinations.
        trials: usize,
        /// Seed of the draw.
        seed: u32,
    },
}

/// The settings of a search besides its space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// How the space is walked.
    pub strategy: Strategy,
    /// Seed of LIME's samples (the same for every trial, so trials differ only by settings).
    pub seed: u32,
    /// Images per classifier call.
    pub batch_size: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::Random {
                trials: 60,
                seed: 0,
            },
            seed: 0,
            batch_size: 32,
        }
    }
}

/// The result of one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// The settings.
    pub params: LimeParams,
    /// Mean IoU over the images.
    pub mean_iou: f64,
    /// IoU per image, in case order.
    pub ious: Vec<f64>,
}

/// Every trial, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Trials sorted by mean IoU, best first (ties keep the space's order).
    pub trials: Vec<Trial>,
    /// The image names, in the order of each trial's `ious`.
    pub images: Vec<String>,
}

impl SearchResult {
    /// The best trial.
    pub fn best(&self) -> Option<&Trial> {
        self.trials.first()
    }
}

/// What a search is doing, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchProgress {
    /// Groups of trials (one segmentation and hide colour) done so far.
    pub groups_done: usize,
    /// Groups in all.
    pub groups: usize,
}

/// IoU of two boolean masks; two empty masks agree perfectly (1).
pub fn mask_iou(a: &Array2<bool>, b: &Array2<bool>) -> Result<f64> {
    if a.dim() != b.dim() {
        return Err(Error::Shape {
            what: "mask".into(),
            actual: a.shape().to_vec(),
            expected: format!("{:?}, the other mask's shape", b.shape()),
        });
    }
    let (mut inter, mut union) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        inter += usize::from(x && y);
        union += usize::from(x || y);
    }
    Ok(if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    })
}

/// Searches `space` for the settings whose LIME masks best match the cases' references.
pub fn search(
    cases: &[SearchCase],
    classifier: &mut dyn Classifier,
    space: &SearchSpace,
    config: &SearchConfig,
    progress: &mut dyn FnMut(SearchProgress),
) -> Result<SearchResult> {
    if cases.is_empty() {
        return Err(Error::Data(
            "the search needs at least one image with a reference mask".into(),
        ));
    }
    space.validate()?;
    for c in cases {
        let (w, h) = c.image.dimensions();
        if c.reference.dim() != (h as usize, w as usize) {
            return Err(Error::Shape {
                what: format!("reference mask of {}", c.name),
                actual: c.reference.shape().to_vec(),
                expected: format!("({h}, {w}), the image's size"),
            });
        }
    }
    let grid = space.grid();
    let chosen: Vec<usize> = match config.strategy {
        Strategy::Grid => (0..grid.len()).collect(),
        Strategy::Random { trials, seed } => {
            if trials == 0 {
                return Err(Error::param("trials", "must be at least 1"));
            }
            // Partial Fisher–Yates with the same generator as LIME's samples.
            let mut rng = NumpyRandomState::new(seed);
            let mut idx: Vec<usize> = (0..grid.len()).collect();
            let take = trials.min(grid.len());
            for i in 0..take {
                let j = i + rng.randint((grid.len() - i) as u64) as usize;
                idx.swap(i, j);
            }
            let mut picked = idx[..take].to_vec();
            picked.sort_unstable();
            picked
        }
    };
    // Group the trials by what needs the classifier: the segmentation and the hide colour.
    let mut groups: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for &t in &chosen {
        let p = &grid[t];
        let seg = space
            .segmentations
            .iter()
            .position(|s| *s == p.segmentation)
            .unwrap_or(0);
        let hide = space
            .hide_colors
            .iter()
            .position(|h| *h == p.hide_color)
            .unwrap_or(0);
        groups.entry((seg, hide)).or_default().push(t);
    }
    let n_groups = groups.len();
    let mut results: Vec<Option<Trial>> = vec![None; grid.len()];
    let mut segment_cache: BTreeMap<(usize, usize), Array2<i32>> = BTreeMap::new();
    for (done, ((seg, hide), trials)) in groups.into_iter().enumerate() {
        let max_samples = trials
            .iter()
            .map(|&t| grid[t].num_samples)
            .max()
            .unwrap_or(2);
        let mut ious: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for (ci, case) in cases.iter().enumerate() {
            let segments = match segment_cache.get(&(seg, ci)) {
                Some(s) => s.clone(),
                None => {
                    let s = space.segmentations[seg].segment(image_to_float(&case.image).view())?;
                    segment_cache.insert((seg, ci), s.clone());
                    s
                }
            };
            let labels = match case.label {
                Some(l) => LabelChoice::Labels(vec![l]),
                None => LabelChoice::Top(1),
            };
            let base = LimeConfig {
                num_samples: max_samples,
                batch_size: config.batch_size,
                hide_color: space.hide_colors[hide],
                labels,
                feature_selection: FeatureSelection::Auto,
                seed: config.seed,
                ..LimeConfig::default()
            };
            let samples = LimeImageExplainer::new(base.clone())?.sample_and_score(
                &case.image,
                segments,
                classifier,
                &mut |_| {},
            )?;
            for &t in &trials {
                let p = &grid[t];
                let explainer = LimeImageExplainer::new(LimeConfig {
                    kernel_width: p.kernel_width,
                    ..base.clone()
                })?;
                let exp = explainer.fit(&samples, p.num_samples)?;
                let mask = exp.mask(
                    exp.top_label(),
                    &MaskOptions {
                        num_features: p.num_features,
                        ..MaskOptions::default()
                    },
                )?;
                let iou = mask_iou(&mask.mapv(|v| v > 0), &case.reference)?;
                ious.entry(t).or_default().push(iou);
            }
        }
        for (t, v) in ious {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            results[t] = Some(Trial {
                params: grid[t].clone(),
                mean_iou: mean,
                ious: v,
            });
        }
        progress(SearchProgress {
            groups_done: done + 1,
            groups: n_groups,
        });
    }
    let mut trials: Vec<Trial> = results.into_iter().flatten().collect();
    trials.sort_by(|a, b| b.mean_iou.total_cmp(&a.mean_iou));
    Ok(SearchResult {
        trials,
        images: cases.iter().map(|c| c.name.clone()).collect(),
    })
}

/// The parameters of a trial as a plain dictionary, for JSON and for the pickle the seed task
/// handed in: `segmentation_fn` (method name), its parameters flattened under
/// `segmentation_params`, `num_samples`, `kernel_width`, `hide_color` (`null` for the mean
/// colour, else `[r, g, b]`), `num_features`, `positive_only`, `seed` and `mean_iou`.
pub fn params_dict(trial: &Trial, seed: u32) -> serde_json::Value {
    let seg = serde_json::to_value(&trial.params.segmentation).unwrap_or(serde_json::Value::Null);
    let (method, params) = match seg {
        serde_json::Value::Object(mut m) => {
            let method = m.remove("method").unwrap_or(serde_json::Value::Null);
            (method, serde_json::Value::Object(m))
        }
        other => (serde_json::Value::Null, other),
    };
    let hide = match trial.params.hide_color {
        HideColor::Mean => serde_json::Value::Null,
        HideColor::Rgb(c) => serde_json::json!(c),
    };
    serde_json::json!({
        "segmentation_fn": method,
        "segmentation_params": params,
        "num_samples": trial.params.num_samples,
        "kernel_width": trial.params.kernel_width,
        "hide_color": hide,
        "num_features": trial.params.num_features,
        "positive_only": true,
        "seed": seed,
        "mean_iou": trial.mean_iou,
    })
}
