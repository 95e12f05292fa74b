//! Superpixel segmentation with scikit-image's semantics: quickshift, SLIC and felzenszwalb.
//!
//! Every segmenter takes an image as scikit-image sees it after `img_as_float`: an
//! `(height, width, channels)` array of `f64` (see [`image_to_float`]), and returns an
//! `(height, width)` `i32` label map numbered as scikit-image numbers it.

use ndarray::{Array2, Array3, ArrayView3};

use crate::Result;

/// A superpixel segmentation algorithm.
pub trait Segmenter: Send + Sync + std::fmt::Debug {
    /// A short name for logs and file metadata (`quickshift`, `slic`, `felzenszwalb`).
    fn name(&self) -> &'static str;

    /// Segments an `(height, width, channels)` float image into an `(height, width)` label map.
    fn segment(&self, image: ArrayView3<'_, f64>) -> Result<Array2<i32>>;
}

/// scikit-image's `img_as_float` of an 8-bit RGB image: `x · (1/255)`, as `(height, width, 3)`.
pub fn image_to_float(image: &image::RgbImage) -> Array3<f64> {
    let (w, h) = image.dimensions();
    let scale = 1.0 / 255.0;
    Array3::from_shape_fn((h as usize, w as usize, 3), |(y, x, c)| {
        f64::from(image.get_pixel(x as u32, y as u32)[c]) * scale
    })
}
