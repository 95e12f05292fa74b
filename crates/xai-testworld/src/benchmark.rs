//! Scoring explanations against the world's ground truth.
//!
//! For each held-out scene, an [`Explainer`] produces a saliency map for the model's
//! prediction target (the true object class), and the map is scored against the true object
//! mask with three localisation measures:
//!
//! - **pointing game**: the map's maximum falls inside the object (Zhang et al., 2016; no
//!   tolerance margin);
//! - **energy in mask**: the share of the map's positive mass inside the object (the
//!   energy-based pointing game of Score-CAM, Wang et al., 2020);
//! - **IoU**: the map binarised to its top pixels — as many as the object has, so no threshold
//!   is chosen by hand — against the object mask.
//!
//! The harness knows nothing of how a map is made: CAM methods and LIME each implement
//! [`Explainer`] and report their row.

use candle_core::{Tensor, Var};
use xai_models::{Backbone, ClassLogit, Target};

use crate::{Mask, Scene, SceneConfig, TestWorldError};

/// Anything that explains a model's score for a class on one input.
pub trait Explainer {
    /// A short name for the table (`gradcam`, `lime`).
    fn name(&self) -> String;

    /// A saliency map for `class` on `input` (`(3, H, W)`, preprocessed for `model`), as
    /// `(height, width, values)` in row-major order; higher means more important. Any size:
    /// the harness resizes it to the scene.
    fn explain(
        &self,
        model: &dyn Backbone,
        input: &Tensor,
        class: usize,
    ) -> Result<(usize, usize, Vec<f32>), TestWorldError>;
}

/// The three localisation scores of one map.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LocalisationScores {
    /// 1 if the map's maximum is inside the mask, else 0.
    pub pointing: f32,
    /// Share of the positive map mass inside the mask, in [0, 1].
    pub energy: f32,
    /// IoU of the top-|mask| pixels of the map with the mask, in [0, 1].
    pub iou: f32,
}

/// Scores `map` (already at the mask's size, row-major) against `mask`.
pub fn score_map(map: &[f32], mask: &Mask) -> Result<LocalisationScores, TestWorldError> {
    let n = (mask.width() * mask.height()) as usize;
    if map.len() != n {
        return Err(TestWorldError::Parameter {
            name: "map",
            reason: format!("map has {} values, mask has {n} pixels", map.len()),
        });
    }
    if map.iter().any(|v| !v.is_finite()) {
        return Err(TestWorldError::Parameter {
            name: "map",
            reason: "the map contains NaN or infinite values".into(),
        });
    }
    let inside = |i: usize| mask.get(i as u32 % mask.width(), i as u32 / mask.width());
    let argmax = (0..n).fold(0, |best, i| if map[i] > map[best] { i } else { best });
    let total: f32 = map.iter().map(|v| v.max(0.0)).sum();
    let energy = if total > 0.0 {
        (0..n)
            .filter(|&i| inside(i))
            .map(|i| map[i].max(0.0))
            .sum::<f32>()
            / total
    } else {
        0.0
    };
    let area = mask.count();
    let mut order: Vec<usize> = (0..n).collect();
    // Stable on ties: earlier pixels first, so constant maps give a deterministic answer.
    order.sort_by(|&a, &b| map[b].total_cmp(&map[a]).then(a.cmp(&b)));
    let hit = order.iter().take(area).filter(|&&i| inside(i)).count();
    let iou = if area == 0 {
        0.0
    } else {
        hit as f32 / (2 * area - hit) as f32
    };
    Ok(LocalisationScores {
        pointing: if inside(argmax) { 1.0 } else { 0.0 },
        energy,
        iou,
    })
}

/// Bilinear resize of a row-major map (align-corners false, as `F.interpolate`).
pub fn resize_map(h: usize, w: usize, map: &[f32], out_h: usize, out_w: usize) -> Vec<f32> {
    let mut out = vec![0f32; out_h * out_w];
    let src = |size: usize, out: usize, i: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * size as f32 / out as f32 - 0.5).max(0.0);
        let x0 = (x.floor() as usize).min(size - 1);
        let x1 = (x0 + 1).min(size - 1);
        (x0, x1, x - x0 as f32)
    };
    for y in 0..out_h {
        let (y0, y1, fy) = src(h, out_h, y);
        for x in 0..out_w {
            let (x0, x1, fx) = src(w, out_w, x);
            let top = map[y0 * w + x0] * (1.0 - fx) + map[y0 * w + x1] * fx;
            let bottom = map[y1 * w + x0] * (1.0 - fx) + map[y1 * w + x1] * fx;
            out[y * out_w + x] = top * (1.0 - fy) + bottom * fy;
        }
    }
    out
}

/// One row of the benchmark table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchmarkRow {
    /// The explainer's name.
    pub method: String,
    /// Scenes scored.
    pub scenes: usize,
    /// Mean pointing-game hit rate.
    pub pointing_game: f32,
    /// Mean energy in the object mask.
    pub energy_in_mask: f32,
    /// Mean IoU of the binarised map with the object mask.
    pub iou: f32,
}

/// Scores `explainer` on `n` held-out scenes (seeds from
/// [`HELD_OUT_SEED_BASE`](crate::train::HELD_OUT_SEED_BASE)), explaining the true object class.
pub fn run(
    explainer: &dyn Explainer,
    model: &dyn Backbone,
    n: usize,
    scenes: &SceneConfig,
    mut on_scene: impl FnMut(usize),
) -> Result<BenchmarkRow, TestWorldError> {
    if n == 0 {
        return Err(TestWorldError::Parameter {
            name: "n",
            reason: "score at least one scene".into(),
        });
    }
    let (mut pointing, mut energy, mut iou) = (0f32, 0f32, 0f32);
    for i in 0..n {
        let scene = Scene::generate(crate::train::HELD_OUT_SEED_BASE + i as u64, scenes)?;
        let spec = model.input_spec();
        let img = xai_models::preprocess::resize_and_crop(&scene.image, spec);
        let input = xai_models::preprocess::to_tensor(&img, spec, model.device())?;
        let (h, w, map) = explainer.explain(model, &input, scene.object.index())?;
        let mask = scene.object_mask();
        let map = resize_map(h, w, &map, mask.height() as usize, mask.width() as usize);
        let s = score_map(&map, &mask)?;
        pointing += s.pointing;
        energy += s.energy;
        iou += s.iou;
        on_scene(i + 1);
    }
    let n_f = n as f32;
    Ok(BenchmarkRow {
        method: explainer.name(),
        scenes: n,
        pointing_game: pointing / n_f,
        energy_in_mask: energy / n_f,
        iou: iou / n_f,
    })
}

/// Baseline: a Gaussian centred in the image (what a method gets for free from the photographer's bias).
#[derive(Debug, Clone, Copy, Default)]
pub struct CenterBaseline;

impl Explainer for CenterBaseline {
    fn name(&self) -> String {
        "center baseline".into()
    }
    fn explain(
        &self,
        _: &dyn Backbone,
        input: &Tensor,
        _: usize,
    ) -> Result<(usize, usize, Vec<f32>), TestWorldError> {
        let (_, h, w) = input.dims3()?;
        let sigma = 0.25 * h.min(w) as f32;
        let map = (0..h * w)
            .map(|i| {
                let dy = (i / w) as f32 + 0.5 - h as f32 / 2.0;
                let dx = (i % w) as f32 + 0.5 - w as f32 / 2.0;
                (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp()
            })
            .collect();
        Ok((h, w, map))
    }
}

/// Vanilla gradient saliency: `|∂ logit / ∂ input|`, maximum over channels (Simonyan et al., 2014).
#[derive(Debug, Clone, Copy, Default)]
pub struct InputGradient;

impl Explainer for InputGradient {
    fn name(&self) -> String {
        "input gradient".into()
    }
    fn explain(
        &self,
        model: &dyn Backbone,
        input: &Tensor,
        class: usize,
    ) -> Result<(usize, usize, Vec<f32>), TestWorldError> {
        let x = Var::from_tensor(&input.unsqueeze(0)?)?;
        let score = ClassLogit(class)
            .score(&model.forward(x.as_tensor())?)?
            .sum_all()?;
        let grads = score.backward()?;
        let g = grads
            .get(x.as_tensor())
            .ok_or_else(|| TestWorldError::Parameter {
                name: "model",
                reason: "the model's output does not depend on its input".into(),
            })?;
        let (_, _, h, w) = g.dims4()?;
        let map = g
            .abs()?
            .max(1)?
            .squeeze(0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok((h, w, map))
    }
}
