//! Turning a normalised map into files and pictures: `.npy`, greyscale PNG, the reference's
//! `show_cam_on_image` overlay, and binary masks.

use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage};
use ndarray::{Array2, ArrayView2};
use ndarray_npy::WriteNpyExt;

use crate::{Error, Result};

/// OpenCV's `COLORMAP_JET` as an RGB table (index = `uint8(255 · value)`), equal to
/// `cv2.applyColorMap` entry for entry.
///
/// ```
/// let lut = xai_cam::render::jet_lut();
/// assert_eq!(lut[0], [0, 0, 128]);     // dark blue
/// assert_eq!(lut[128], [130, 255, 126]);
/// assert_eq!(lut[255], [128, 0, 0]);   // dark red
/// ```
pub fn jet_lut() -> [[u8; 3]; 256] {
    let mut lut = [[0u8; 3]; 256];
    for (i, entry) in lut.iter_mut().enumerate() {
        let i = i as i32;
        let b = match i {
            0..=31 => 4 * i + 128,
            32..=95 => 255,
            96..=158 => 638 - 4 * i,
            159 => 1,
            _ => 0,
        };
        let g = match i {
            0..=32 => 0,
            33..=95 => 4 * (i - 32),
            96..=159 => 255,
            160..=223 => 4 * (223 - i),
            _ => 0,
        };
        let r = match i {
            0..=95 => 0,
            96..=159 => 4 * i - 382,
            160..=223 => 255,
            _ => 1148 - 4 * i,
        };
        *entry = [
            r.clamp(0, 255) as u8,
            g.clamp(0, 255) as u8,
            b.clamp(0, 255) as u8,
        ];
    }
    lut
}

/// The channel order of the heatmap in an overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColourOrder {
    /// Red, green, blue: right for an RGB image (the reference's `use_rgb=True`).
    #[default]
    Rgb,
    /// OpenCV's blue, green, red: the reference's default (`use_rgb=False`), which looks
    /// inverted on an RGB image.
    Bgr,
}

/// Settings of [`overlay`], defaulting to the reference's look on an RGB image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlayOptions {
    /// The image's share of the blend, in `[0, 1]` (default 0.5).
    pub image_weight: f32,
    /// The heatmap's channel order (default RGB).
    pub colour_order: ColourOrder,
    /// Divide the blend by its maximum (the reference always does; it brightens dark images).
    pub divide_by_max: bool,
}

impl Default for OverlayOptions {
    fn default() -> Self {
        Self {
            image_weight: 0.5,
            colour_order: ColourOrder::Rgb,
            divide_by_max: true,
        }
    }
}

/// The reference's `show_cam_on_image(img / 255, map, use_rgb=True)`: the jet heatmap of
/// `uint8(255 · map)` blended with the image, `(1 − w)·heat + w·img`, divided by its maximum
/// and truncated to `uint8`.
///
/// `map` must have the image's size; its values should be in `[0, 1]`.
///
/// ```
/// use image::RgbImage;
/// use ndarray::Array2;
/// let img = RgbImage::from_pixel(4, 2, image::Rgb([200, 200, 200]));
/// let map = Array2::from_shape_fn((2, 4), |(_, j)| j as f32 / 3.0);
/// let out = xai_cam::render::overlay(&img, map.view(), &Default::default())?;
/// assert_eq!(out.dimensions(), (4, 2));
/// // Hot (right) pixels are red, cold (left) ones blue.
/// assert!(out.get_pixel(3, 0)[0] > out.get_pixel(3, 0)[2]);
/// assert!(out.get_pixel(0, 0)[2] > out.get_pixel(0, 0)[0]);
/// # Ok::<(), xai_cam::Error>(())
/// ```
pub fn overlay(
    img: &RgbImage,
    map: ArrayView2<'_, f32>,
    opts: &OverlayOptions,
) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    if map.dim() != (h as usize, w as usize) {
        return Err(Error::Shape {
            what: "CAM map".into(),
            actual: map.shape().to_vec(),
            expected: format!("({h}, {w}), the image's size"),
        });
    }
    if !(0.0..=1.0).contains(&opts.image_weight) {
        return Err(Error::param(
            "image_weight",
            format!("{} is outside [0, 1]", opts.image_weight),
        ));
    }
    let lut = jet_lut();
    let iw = opts.image_weight;
    let mut blend = vec![0f32; (w * h * 3) as usize];
    let mut max = 0f32;
    for y in 0..h {
        for x in 0..w {
            let q = quantise(map[[y as usize, x as usize]]);
            let mut heat = lut[q as usize];
            if opts.colour_order == ColourOrder::Bgr {
                heat.reverse();
            }
            let p = img.get_pixel(x, y);
            for c in 0..3 {
                let v = (1.0 - iw) * (heat[c] as f32 / 255.0) + iw * (p[c] as f32 / 255.0);
                blend[((y * w + x) * 3) as usize + c] = v;
                max = max.max(v);
            }
        }
    }
    let scale = if opts.divide_by_max && max > 0.0 {
        max
    } else {
        1.0
    };
    Ok(RgbImage::from_fn(w, h, |x, y| {
        let i = ((y * w + x) * 3) as usize;
        Rgb([0, 1, 2].map(|c| to_u8(255.0 * (blend[i + c] / scale))))
    }))
}

/// `uint8(255 · v)` as numpy does it for values in range: truncation toward zero; values
/// outside `[0, 1]` are clamped (NaN becomes 0).
fn quantise(v: f32) -> u8 {
    to_u8(255.0 * v)
}

fn to_u8(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        v.clamp(0.0, 255.0) as u8
    }
}

/// The map as a greyscale image, `uint8(255 · map)` (truncated; values clamped to `[0, 1]`).
///
/// ```
/// let map = ndarray::array![[0.0f32, 0.5], [1.0, 0.999]];
/// let g = xai_cam::render::gray_image(map.view());
/// assert_eq!(g.as_raw(), &vec![0, 127, 255, 254]);
/// ```
pub fn gray_image(map: ArrayView2<'_, f32>) -> GrayImage {
    let (h, w) = map.dim();
    GrayImage::from_fn(w as u32, h as u32, |x, y| {
        Luma([quantise(map[[y as usize, x as usize]])])
    })
}

/// The pixels whose value is at least `threshold`.
///
/// ```
/// let map = ndarray::array![[0.1f32, 0.5], [0.7, 0.2]];
/// let m = xai_cam::render::threshold_mask(map.view(), 0.5);
/// assert_eq!(m, ndarray::array![[false, true], [true, false]]);
/// ```
pub fn threshold_mask(map: ArrayView2<'_, f32>, threshold: f32) -> Array2<bool> {
    map.mapv(|v| v >= threshold)
}

/// The `percent`% of pixels with the highest values (`round(H·W·percent/100)` pixels; ties
/// are broken by position, row-major, so the count is exact).
///
/// ```
/// let map = ndarray::array![[0.1f32, 0.5], [0.7, 0.2]];
/// let m = xai_cam::render::top_percent_mask(map.view(), 50.0)?;
/// assert_eq!(m, ndarray::array![[false, true], [true, false]]);
/// # Ok::<(), xai_cam::Error>(())
/// ```
pub fn top_percent_mask(map: ArrayView2<'_, f32>, percent: f32) -> Result<Array2<bool>> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(Error::param(
            "percent",
            format!("{percent} is outside [0, 100]"),
        ));
    }
    let (h, w) = map.dim();
    let n = h * w;
    let keep = ((n as f64) * percent as f64 / 100.0).round() as usize;
    let values: Vec<f32> = map.iter().copied().collect();
    let mut order: Vec<usize> = (0..n).collect();
    // Highest first; NaN counts as lowest; ties by position.
    order.sort_by(|&a, &b| {
        let (va, vb) = (values[a], values[b]);
        let va = if va.is_nan() { f32::NEG_INFINITY } else { va };
        let vb = if vb.is_nan() { f32::NEG_INFINITY } else { vb };
        vb.total_cmp(&va).then(a.cmp(&b))
    });
    let mut mask = Array2::from_elem((h, w), false);
    for &i in order.iter().take(keep) {
        mask[[i / w, i % w]] = true;
    }
    Ok(mask)
}

/// A mask as a black-and-white image (255 where set).
pub fn mask_image(mask: ArrayView2<'_, bool>) -> GrayImage {
    let (h, w) = mask.dim();
    GrayImage::from_fn(w as u32, h as u32, |x, y| {
        Luma([if mask[[y as usize, x as usize]] {
            255
        } else {
            0
        }])
    })
}

/// Writes a map as a float32 `.npy` file (shape `(H, W)`).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("map.npy");
/// xai_cam::render::write_npy(&path, ndarray::array![[0.0f32, 1.0]].view())?;
/// assert!(path.exists());
/// # Ok::<(), xai_cam::Error>(())
/// ```
pub fn write_npy(path: impl AsRef<Path>, map: ArrayView2<'_, f32>) -> Result<()> {
    let path = path.as_ref();
    let err = |reason: String| Error::Write {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut writer = std::io::BufWriter::new(file);
    map.to_owned()
        .write_npy(&mut writer)
        .map_err(|e| err(e.to_string()))?;
    Ok(())
}
