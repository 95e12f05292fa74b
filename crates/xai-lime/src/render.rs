//! Pictures of an explanation: the weights painted on the image, and superpixel outlines.

use image::{Rgb, RgbImage};
use ndarray::{Array2, Array3};

use crate::boundaries::{mark_boundaries, BoundaryMode};
use crate::{Error, ImageExplanation, Result};

/// scikit-image's `mark_boundaries` default colour (yellow).
pub const BOUNDARY_COLOR: [f64; 3] = [1.0, 1.0, 0.0];

/// An 8-bit image as scikit-image's float image, `(height, width, 3)` in [0, 1].
pub fn to_float(image: &RgbImage) -> Array3<f64> {
    crate::image_to_float(image)
}

/// A float `(height, width, 3)` image in [0, 1] back to 8 bits (rounded, clipped).
pub fn to_rgb8(image: &Array3<f64>) -> Result<RgbImage> {
    let (h, w, c) = image.dim();
    if c != 3 {
        return Err(Error::Shape {
            what: "image".into(),
            actual: vec![h, w, c],
            expected: "(height, width, 3)".into(),
        });
    }
    Ok(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb([0, 1, 2]
            .map(|k| (image[[y as usize, x as usize, k]].clamp(0.0, 1.0) * 255.0).round() as u8))
    }))
}

/// `mark_boundaries(image / 255, labels)` in yellow, the picture lime's tutorial shows for a
/// mask (pass the mask) or for all superpixels (pass the segments).
pub fn outline(image: &RgbImage, labels: &Array2<i32>) -> Result<RgbImage> {
    let marked = mark_boundaries(
        to_float(image).view(),
        labels.view(),
        BOUNDARY_COLOR,
        None,
        BoundaryMode::Outer,
    )?;
    to_rgb8(&marked)
}

/// Every superpixel tinted by its weight for `label`: green for, red against, the strength
/// by |weight| relative to the largest; `alpha` is the strongest tint's opacity.
pub fn weight_overlay(
    explanation: &ImageExplanation,
    label: usize,
    alpha: f32,
) -> Result<RgbImage> {
    let weights = explanation.weights_by_feature(label)?;
    let max = weights.iter().fold(0f64, |m, w| m.max(w.abs()));
    let mut out = explanation.image.clone();
    if max == 0.0 {
        return Ok(out);
    }
    let buf: &mut [u8] = &mut out;
    for (f, &w) in weights.iter().enumerate() {
        let a = (w.abs() / max) as f32 * alpha.clamp(0.0, 1.0);
        let tint = if w >= 0.0 {
            [0.0, 255.0, 0.0]
        } else {
            [255.0, 0.0, 0.0]
        };
        for &p in explanation.superpixels.pixels(f) {
            let i = 3 * p as usize;
            for c in 0..3 {
                let v = f32::from(buf[i + c]) * (1.0 - a) + tint[c] * a;
                buf[i + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(out)
}

/// Each pixel's weight (its superpixel's) for `label`, `(height, width)`: a saliency map for
/// comparisons with other methods.
pub fn weight_map(explanation: &ImageExplanation, label: usize) -> Result<Array2<f32>> {
    let weights = explanation.weights_by_feature(label)?;
    let (h, w) = explanation.superpixels.labels().dim();
    let mut map = Array2::<f32>::zeros((h, w));
    if let Some(flat) = map.as_slice_mut() {
        for (f, &wt) in weights.iter().enumerate() {
            for &p in explanation.superpixels.pixels(f) {
                flat[p as usize] = wt as f32;
            }
        }
    }
    Ok(map)
}
