//! Segment boundaries, as scikit-image's `find_boundaries` and `mark_boundaries`.
//!
//! A pixel is on a boundary (`thick`) when its 4-neighbourhood (with itself) holds more than
//! one label; the image edge alone never makes a boundary. `inner` keeps the boundary pixels
//! that are not background, `outer` draws object/background boundaries on the background side
//! and object/object boundaries on both sides. The background label is 0.
//!
//! ```
//! use ndarray::{array, Array3};
//! use xai_lime::boundaries::{find_boundaries, mark_boundaries, BoundaryMode, YELLOW};
//!
//! let labels = array![[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]];
//! let inner = find_boundaries(labels.view(), BoundaryMode::Inner);
//! assert!(inner[[1, 1]] && !inner[[0, 0]]);
//! let outer = find_boundaries(labels.view(), BoundaryMode::Outer);
//! assert!(outer[[0, 1]] && !outer[[1, 1]]);
//!
//! let image = Array3::<f64>::zeros((4, 4, 3));
//! let marked = mark_boundaries(image.view(), labels.view(), YELLOW, None, BoundaryMode::Outer)?;
//! assert_eq!(marked[[0, 1, 0]], 1.0);
//! # Ok::<(), xai_lime::Error>(())
//! ```

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// scikit-image's default boundary colour: yellow, `(1, 1, 0)`.
pub const YELLOW: [f64; 3] = [1.0, 1.0, 0.0];

/// Which pixels of a label change count as the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundaryMode {
    /// Both sides of every label change (`find_boundaries`' default).
    Thick,
    /// The side that is not background.
    Inner,
    /// Object/background boundaries on the background side, object/object on both sides
    /// (`mark_boundaries`' default).
    Outer,
}

/// The boundaries of a label map (connectivity 1, background label 0).
pub fn find_boundaries(labels: ArrayView2<'_, i32>, mode: BoundaryMode) -> Array2<bool> {
    find_boundaries_with_background(labels, mode, 0)
}

/// Max and min over a neighbourhood clipped to the image (scikit-image's `reflect` border
/// gives the same extrema). `cross` chooses the 4-neighbourhood, else the 3×3 square.
fn extremum(labels: &ArrayView2<'_, i32>, y: usize, x: usize, cross: bool) -> (i32, i32) {
    let (h, w) = labels.dim();
    let mut lo = labels[[y, x]];
    let mut hi = lo;
    for yy in y.saturating_sub(1)..(y + 2).min(h) {
        for xx in x.saturating_sub(1)..(x + 2).min(w) {
            if cross && yy != y && xx != x {
                continue;
            }
            let v = labels[[yy, xx]];
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo, hi)
}

/// [`find_boundaries`] with another background label.
pub fn find_boundaries_with_background(
    labels: ArrayView2<'_, i32>,
    mode: BoundaryMode,
    background: i32,
) -> Array2<bool> {
    let (h, w) = labels.dim();
    Array2::from_shape_fn((h, w), |(y, x)| {
        let (lo, hi) = extremum(&labels, y, x, true);
        let thick = lo != hi;
        let l = labels[[y, x]];
        match mode {
            BoundaryMode::Thick => thick,
            BoundaryMode::Inner => thick && l != background,
            BoundaryMode::Outer => {
                if !thick {
                    return false;
                }
                if l == background {
                    return true;
                }
                // Objects next to another object (the background counts as the largest
                // label for the minimum), over the 3×3 square.
                let mut max = l;
                let mut min = l;
                for yy in y.saturating_sub(1)..(y + 2).min(h) {
                    for xx in x.saturating_sub(1)..(x + 2).min(w) {
                        let v = labels[[yy, xx]];
                        max = max.max(v);
                        min = min.min(if v == background { i32::MAX } else { v });
                    }
                }
                max != min
            }
        }
    })
}

/// Draws the boundaries of `labels` on a copy of `image` (`(height, width, 3)` or
/// `(height, width, 1)`, which is made RGB), as scikit-image's `mark_boundaries`: first the
/// 3×3 dilation of the boundaries in `outline_color` (if any), then the boundaries in `color`.
///
/// Errors with [`Error::Shape`] when the label map does not match the image.
pub fn mark_boundaries(
    image: ArrayView3<'_, f64>,
    labels: ArrayView2<'_, i32>,
    color: [f64; 3],
    outline_color: Option<[f64; 3]>,
    mode: BoundaryMode,
) -> Result<Array3<f64>> {
    let (h, w, c) = image.dim();
    if labels.dim() != (h, w) {
        return Err(Error::Shape {
            what: "mark_boundaries labels".into(),
            actual: labels.shape().to_vec(),
            expected: format!("the image's ({h}, {w})"),
        });
    }
    let mut marked = match c {
        3 => image.to_owned(),
        1 => Array3::from_shape_fn((h, w, 3), |(y, x, _)| image[[y, x, 0]]),
        _ => {
            return Err(Error::Shape {
                what: "mark_boundaries image".into(),
                actual: vec![h, w, c],
                expected: "(height, width, 3) or (height, width, 1)".into(),
            })
        }
    };
    let bounds = find_boundaries(labels, mode);
    let paint = |m: &mut Array3<f64>, y: usize, x: usize, col: [f64; 3]| {
        for (k, v) in col.into_iter().enumerate() {
            m[[y, x, k]] = v;
        }
    };
    if let Some(outline) = outline_color {
        for y in 0..h {
            for x in 0..w {
                let near = (y.saturating_sub(1)..(y + 2).min(h))
                    .any(|yy| (x.saturating_sub(1)..(x + 2).min(w)).any(|xx| bounds[[yy, xx]]));
                if near {
                    paint(&mut marked, y, x, outline);
                }
            }
        }
    }
    for ((y, x), &b) in bounds.indexed_iter() {
        if b {
            paint(&mut marked, y, x, color);
        }
    }
    Ok(marked)
}
