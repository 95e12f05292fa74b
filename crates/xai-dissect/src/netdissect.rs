//! Classic Network Dissection (Bau et al., CVPR 2017; NetDissect-Lite): a unit is labelled
//! with the concept whose pixel masks best overlap the unit's top-quantile activation regions,
//! by IoU accumulated over the whole probe set.
//!
//! Steps, as the reference:
//! 1. Per unit `k`, the threshold `τ_k` is the `1 − quantile` quantile (default 0.995) of all
//!    its activations over every probe image and position. xai computes it exactly (linear
//!    interpolation between order statistics, NumPy's default); the reference estimates it with
//!    a seeded streaming sketch, so thresholds agree up to the sketch's error.
//! 2. Per image and unit whose spatial maximum exceeds `τ_k`, the map is upsampled to the
//!    concept masks' size (bilinear, `align_corners=False`, edges clamped) and thresholded
//!    (`> τ_k`, strict).
//! 3. Sums over the probe set: `inter[k,c]` = pixels of concept `c` in unit `k`'s region;
//!    `truth[c]` = pixels of concept `c`; `act[k,g]` = region pixels of the images where the
//!    region touches a concept of kind `g` (the reference's per-category activation count).
//! 4. `IoU[k,c] = inter / (act[k, kind(c)] + truth[c] − inter + 1e-10)`; the unit's label is
//!    the concept of largest IoU (the first on ties), and the unit is a *detector* when that
//!    IoU reaches the threshold (0.04 by default). Units below it get no label.
//!
//! The probe images are preprocessed with the model's own input spec (the reference uses a
//! fixed Broden normalisation). All activations of a layer are held in memory, `N·K·h·w`
//! floats (ResNet-18 `layer4` on 10,000 images: 1 GB).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::DType;
use image::GrayImage;
use xai_models::{Backbone, Layout};

use crate::{Dissection, Error, NeuronLabel, Result, TopImage};

/// Settings of the IoU method.
#[derive(Debug, Clone, PartialEq)]
pub struct IouConfig {
    /// The top fraction of each unit's activations that forms its regions (0.005).
    pub quantile: f64,
    /// A unit is a detector, and labelled, when its best IoU reaches this (0.04).
    pub threshold: f32,
    /// Runner-up concepts kept per unit (5).
    pub top_concepts: usize,
    /// Most activating images kept per unit, by spatial maximum (10, as the reference).
    pub top_images: usize,
    /// Images per forward pass (32).
    pub batch_size: usize,
}

impl Default for IouConfig {
    fn default() -> Self {
        Self {
            quantile: 0.005,
            threshold: 0.04,
            top_concepts: 5,
            top_images: 10,
            batch_size: 32,
        }
    }
}

/// Where the per-pixel concept masks of a probe image come from: one entry per concept, in
/// the concept list's order, `None` when the concept is absent from the image. Masks are
/// white (> 127) where the concept is; all present masks of an image have one size.
pub trait ConceptMasks {
    /// The masks of `image`.
    fn masks(&self, image: &Path) -> Result<Vec<Option<GrayImage>>>;
}

impl ConceptMasks for crate::scorer::GroundTruthSimilarity {
    fn masks(&self, image: &Path) -> Result<Vec<Option<GrayImage>>> {
        crate::scorer::GroundTruthSimilarity::masks(self, image)
    }
}

/// Per-unit thresholds: the `1 − quantile` quantile of each unit's values, exact.
fn thresholds(acts: &[f32], n: usize, k: usize, hw: usize, quantile: f64) -> Vec<f32> {
    (0..k)
        .map(|unit| {
            let mut values: Vec<f32> = (0..n)
                .flat_map(|i| {
                    acts[(i * k + unit) * hw..(i * k + unit + 1) * hw]
                        .iter()
                        .copied()
                })
                .collect();
            values.sort_by(f32::total_cmp);
            let pos = (1.0 - quantile) * (values.len().saturating_sub(1)) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(values.len() - 1);
            let t = (pos - lo as f64) as f32;
            values[lo] + (values[hi] - values[lo]) * t
        })
        .collect()
}

/// Bilinear upsampling with `align_corners=False` (half-pixel centres, edges clamped): the
/// source index and weight of each output coordinate along one axis.
fn axis_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|o| {
            let x = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (x.floor() as usize).min(src - 1);
            let i1 = (i0 + 1).min(src - 1);
            (i0, i1, x - i0 as f32)
        })
        .collect()
}

/// Labels the units of the spatial `layers` of `model` on `images` by IoU with the concept
/// masks given by `masks`. `kinds` maps a concept to its kind (the reference's category);
/// concepts without one form a kind of their own. `progress(done, total)` is called as images
/// are processed (each image twice: the forward pass, then the tally).
#[allow(clippy::too_many_arguments)]
pub fn iou_dissect(
    model: &dyn Backbone,
    model_name: &str,
    layers: &[String],
    images: &[PathBuf],
    concepts: &[String],
    kinds: &BTreeMap<String, String>,
    masks: &dyn ConceptMasks,
    config: &IouConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Dissection> {
    if images.is_empty() {
        return Err(Error::Parameter {
            name: "probe",
            reason: "the probe set has no images".into(),
        });
    }
    if !(0.0..1.0).contains(&config.quantile) || config.quantile == 0.0 {
        return Err(Error::Parameter {
            name: "quantile",
            reason: format!(
                "{} is not in (0, 1); the reference uses 0.005",
                config.quantile
            ),
        });
    }
    let infos = layers
        .iter()
        .map(|l| model.layer(l).cloned())
        .collect::<xai_models::Result<Vec<_>>>()?;
    for info in &infos {
        if !matches!(info.layout, Layout::Spatial) {
            return Err(Error::Parameter {
                name: "layers",
                reason: format!(
                    "`{}` has no spatial maps; the IoU method needs convolutional layers (e.g. layer3, layer4)",
                    info.name
                ),
            });
        }
    }
    let n = images.len();
    let total = 2 * n;
    // Pass 1: every layer's maps over the probe set, (N, K, h, w) row-major.
    let names: Vec<&str> = layers.iter().map(String::as_str).collect();
    let spec = model.input_spec().clone();
    let mut acts: Vec<Vec<f32>> = vec![Vec::new(); layers.len()];
    let mut dims: Vec<(usize, usize, usize)> = vec![(0, 0, 0); layers.len()];
    let mut done = 0;
    for batch in images.chunks(config.batch_size.max(1)) {
        let x = crate::activations::input_batch(batch, &spec, model.device())?;
        let outs = model.forward_to_many(&x, &names)?;
        for (l, out) in outs.iter().enumerate() {
            let (_, k, h, w) = out.dims4()?;
            dims[l] = (k, h, w);
            acts[l].extend(out.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
        }
        done += batch.len();
        progress(done, total);
    }
    if acts.iter().flatten().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite(
            "the model's activations contain NaN or infinite values; check the weights".into(),
        ));
    }

    let kind_names: Vec<String> = concepts
        .iter()
        .map(|c| kinds.get(c).cloned().unwrap_or_else(|| format!("({c})")))
        .collect();
    let mut kind_list: Vec<String> = kind_names.clone();
    kind_list.sort();
    kind_list.dedup();
    let kind_of: Vec<usize> = kind_names
        .iter()
        .map(|k| kind_list.binary_search(k).unwrap_or(0))
        .collect();
    let c_count = concepts.len();
    let words = c_count.div_ceil(64).max(1);

    let taus: Vec<Vec<f32>> = acts
        .iter()
        .zip(&dims)
        .map(|(a, &(k, h, w))| thresholds(a, n, k, h * w, config.quantile))
        .collect();
    let mut inter: Vec<Vec<f64>> = dims
        .iter()
        .map(|&(k, _, _)| vec![0.0; k * c_count])
        .collect();
    let mut act: Vec<Vec<f64>> = dims
        .iter()
        .map(|&(k, _, _)| vec![0.0; k * kind_list.len()])
        .collect();
    let mut truth = vec![0f64; c_count];

    // Pass 2: the tally, image by image.
    for (i, path) in images.iter().enumerate() {
        let image_masks = masks.masks(path)?;
        if image_masks.len() != c_count {
            return Err(Error::file(
                path,
                format!("{} concept masks for {c_count} concepts", image_masks.len()),
            ));
        }
        let Some((sw, sh)) = image_masks.iter().flatten().map(|m| m.dimensions()).next() else {
            // An image without any concept carries no evidence (the reference drops it).
            done += 1;
            progress(done, total);
            continue;
        };
        let (sw, sh) = (sw as usize, sh as usize);
        // Per pixel, the set of concepts there, as bits.
        let mut labels = vec![0u64; sh * sw * words];
        for (c, m) in image_masks.iter().enumerate() {
            let Some(m) = m else { continue };
            if m.dimensions() != (sw as u32, sh as u32) {
                return Err(Error::file(
                    path,
                    format!(
                        "concept `{}` has a {}×{} mask, others {sw}×{sh}",
                        concepts[c],
                        m.width(),
                        m.height()
                    ),
                ));
            }
            for (p, v) in m.as_raw().iter().enumerate() {
                if *v > 127 {
                    labels[p * words + c / 64] |= 1 << (c % 64);
                    truth[c] += 1.0;
                }
            }
        }
        for (l, &(k, h, w)) in dims.iter().enumerate() {
            let (ty, tx) = (axis_taps(h, sh), axis_taps(w, sw));
            for unit in 0..k {
                let map = &acts[l][(i * k + unit) * h * w..(i * k + unit + 1) * h * w];
                let tau = taus[l][unit];
                if map.iter().all(|&v| v <= tau) {
                    continue;
                }
                let mut region = 0usize;
                let mut kinds_hit = vec![false; kind_list.len()];
                for (y, &(y0, y1, fy)) in ty.iter().enumerate() {
                    for (x, &(x0, x1, fx)) in tx.iter().enumerate() {
                        let top = map[y0 * w + x0] * (1.0 - fx) + map[y0 * w + x1] * fx;
                        let bottom = map[y1 * w + x0] * (1.0 - fx) + map[y1 * w + x1] * fx;
                        if top * (1.0 - fy) + bottom * fy <= tau {
                            continue;
                        }
                        region += 1;
                        let p = y * sw + x;
                        for word in 0..words {
                            let mut bits = labels[p * words + word];
                            while bits != 0 {
                                let c = word * 64 + bits.trailing_zeros() as usize;
                                bits &= bits - 1;
                                inter[l][unit * c_count + c] += 1.0;
                                kinds_hit[kind_of[c]] = true;
                            }
                        }
                    }
                }
                for (g, hit) in kinds_hit.iter().enumerate() {
                    if *hit {
                        act[l][unit * kind_list.len() + g] += region as f64;
                    }
                }
            }
        }
        done += 1;
        progress(done, total);
    }

    let mut out = Vec::new();
    for (l, &(k, h, w)) in dims.iter().enumerate() {
        for unit in 0..k {
            let ious: Vec<f32> = (0..c_count)
                .map(|c| {
                    let i = inter[l][unit * c_count + c];
                    let a = act[l][unit * kind_list.len() + kind_of[c]];
                    (i / (a + truth[c] - i + 1e-10)) as f32
                })
                .collect();
            let mut order: Vec<usize> = (0..c_count).collect();
            order.sort_by(|&x, &y| ious[y].total_cmp(&ious[x]).then(x.cmp(&y)));
            let Some(&best) = order.first() else { continue };
            if ious[best] < config.threshold {
                continue;
            }
            let mut peaks: Vec<(usize, f32)> = (0..n)
                .map(|i| {
                    let map = &acts[l][(i * k + unit) * h * w..(i * k + unit + 1) * h * w];
                    (i, map.iter().copied().fold(f32::NEG_INFINITY, f32::max))
                })
                .collect();
            peaks.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let top_images = peaks
                .iter()
                .take(config.top_images)
                .map(|&(i, v)| TopImage {
                    index: i,
                    path: images[i].clone(),
                    activation: v,
                })
                .collect();
            out.extend(NeuronLabel::ranked(
                &layers[l],
                unit,
                concepts,
                &order,
                |c| ious[c],
                config.top_concepts,
                top_images,
            ));
        }
    }
    Ok(Dissection {
        model: model_name.to_string(),
        method: "iou".into(),
        similarity: "iou".into(),
        layers: layers.to_vec(),
        probe_images: n,
        labels: out,
        concept_kinds: concepts
            .iter()
            .filter_map(|c| kinds.get(c).map(|k| (c.clone(), k.clone())))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_threshold_is_the_linear_quantile_of_each_unit() {
        // Two units, 2 images × 2 positions: unit 0 holds 0..4, unit 1 holds 10..14.
        let acts = [0.0, 1.0, 10.0, 11.0, 2.0, 3.0, 12.0, 13.0];
        let t = thresholds(&acts, 2, 2, 2, 0.25);
        // 0.75 quantile of [0,1,2,3] = 2.25; of [10..13] = 12.25.
        assert!(
            (t[0] - 2.25).abs() < 1e-6 && (t[1] - 12.25).abs() < 1e-6,
            "{t:?}"
        );
    }

    #[test]
    fn upsampling_taps_follow_half_pixel_centres() {
        let taps = axis_taps(2, 4);
        // Output centres 0.5, 1.5, 2.5, 3.5 map to source −0.25 (clamped), 0.25, 0.75, 1.25.
        assert_eq!((taps[0].0, taps[0].1), (0, 1));
        assert!((taps[0].2 - 0.0).abs() < 1e-6);
        assert!((taps[1].2 - 0.25).abs() < 1e-6);
        assert!((taps[2].2 - 0.75).abs() < 1e-6);
        assert_eq!((taps[3].0, taps[3].1), (1, 1));
    }
}
