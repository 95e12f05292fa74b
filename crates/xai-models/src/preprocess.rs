//! Images in, tensors out: torchvision's evaluation transform, reproduced exactly.
//!
//! torchvision resizes PIL images with Pillow, whose antialiased bilinear filter works on
//! 8-bit pixels with 22-bit fixed-point weights, horizontal pass first. [`pillow_resize`]
//! follows the same arithmetic, so the preprocessed tensor equals torchvision's bit for bit
//! on the same decoded pixels.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::{Error, InputSpec, Result};

/// Pillow's `PRECISION_BITS` for 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// A resampling filter, as Pillow defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// Triangle filter, support 1 (PIL `BILINEAR`, torchvision's default).
    Bilinear,
    /// Keys cubic with a = −0.5, support 2 (PIL `BICUBIC`).
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Self::Bilinear => 1.0,
            Self::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Self::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Self::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// For each output position: the first input index and the fixed-point weights.
struct Coefficients {
    start: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    let mut start = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // Pillow truncates toward zero here ((int) cast), then clamps.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let mut k: Vec<f64> = (xmin..xmax)
            .map(|x| filter.weight((x as f64 - center + 0.5) / filter_scale))
            .collect();
        let total: f64 = k.iter().sum();
        if total != 0.0 {
            k.iter_mut().for_each(|w| *w /= total);
        }
        let one = (1u32 << PRECISION_BITS) as f64;
        let fixed = k
            .iter()
            .map(|&w| {
                if w < 0.0 {
                    (-0.5 + w * one) as i32
                } else {
                    (0.5 + w * one) as i32
                }
            })
            .collect();
        start.push(xmin);
        weights.push(fixed);
    }
    Coefficients { start, weights }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    if acc >= (1 << PRECISION_BITS << 8) {
        255
    } else if acc <= 0 {
        0
    } else {
        (acc >> PRECISION_BITS) as u8
    }
}

/// Resizes an RGB image exactly as Pillow's `Image.resize(size, filter)` does (no
/// `reducing_gap`): separable, horizontal pass first, 8-bit rounding between passes.
pub fn pillow_resize(img: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    let (w0, h0) = img.dimensions();
    if (w0, h0) == (width, height) || width == 0 || height == 0 || w0 == 0 || h0 == 0 {
        return img.clone();
    }
    let horizontal = if width != w0 {
        let c = coefficients(w0 as usize, width as usize, filter);
        let mut out = RgbImage::new(width, h0);
        let src = img.as_raw();
        let dst_row = width as usize * 3;
        let src_row = w0 as usize * 3;
        out.chunks_exact_mut(dst_row)
            .zip(src.chunks_exact(src_row))
            .for_each(|(dst, row)| {
                for xx in 0..width as usize {
                    let s = c.start[xx];
                    for ch in 0..3 {
                        let mut acc: i32 = 1 << (PRECISION_BITS - 1);
                        for (j, &k) in c.weights[xx].iter().enumerate() {
                            acc += row[(s + j) * 3 + ch] as i32 * k;
                        }
                        dst[xx * 3 + ch] = clip8(acc);
                    }
                }
            });
        out
    } else {
        img.clone()
    };
    if height == h0 {
        return horizontal;
    }
    let c = coefficients(h0 as usize, height as usize, filter);
    let row = width as usize * 3;
    let src = horizontal.as_raw();
    let mut out = RgbImage::new(width, height);
    out.chunks_exact_mut(row).enumerate().for_each(|(yy, dst)| {
        let s = c.start[yy];
        for (x, d) in dst.iter_mut().enumerate() {
            let mut acc: i32 = 1 << (PRECISION_BITS - 1);
            for (j, &k) in c.weights[yy].iter().enumerate() {
                acc += src[(s + j) * row + x] as i32 * k;
            }
            *d = clip8(acc);
        }
    });
    out
}

/// torchvision `Resize(size)` with an int: the shorter side becomes `size`, the longer one
/// `int(size * long / short)` (truncated); same size means unchanged.
pub fn resize_shorter(img: &RgbImage, size: u32, filter: Filter) -> RgbImage {
    let (w, h) = img.dimensions();
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    if short == size || short == 0 {
        return img.clone();
    }
    let new_long = (size as u64 * long as u64 / short as u64) as u32;
    let (nw, nh) = if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    };
    pillow_resize(img, nw, nh, filter)
}

/// Python's `round`: halves go to the even neighbour.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

/// torchvision `CenterCrop((height, width))`: zero-pads a smaller image first, then takes
/// the window at `round((H − h) / 2)`, `round((W − w) / 2)`.
pub fn center_crop(img: &RgbImage, height: u32, width: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let padded;
    let img = if w < width || h < height {
        let (pw, ph) = (w.max(width), h.max(height));
        let (left, top) = ((pw - w) / 2, (ph - h) / 2);
        let mut canvas = RgbImage::new(pw, ph);
        image::imageops::replace(&mut canvas, img, left as i64, top as i64);
        padded = canvas;
        &padded
    } else {
        img
    };
    let (w, h) = img.dimensions();
    let top = round_half_even((h - height) as f64 / 2.0) as u32;
    let left = round_half_even((w - width) as f64 / 2.0) as u32;
    image::imageops::crop_imm(img, left, top, width, height).to_image()
}

/// Decodes an image file into 8-bit RGB: grey, alpha, 16-bit and palette images are
/// converted, and the EXIF orientation is applied.
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    let err = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(err("this is a directory, not an image file".into()));
    }
    if meta.len() == 0 {
        return Err(err("the file is empty (0 bytes)".into()));
    }
    let reader = ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(err(
            "not an image format xai can read (PNG, JPEG, GIF, BMP, TIFF, WebP, …)".into(),
        ));
    }
    let mut decoder = reader.into_decoder().map_err(|e| err(e.to_string()))?;
    let orientation = decoder.orientation().map_err(|e| err(e.to_string()))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| err(e.to_string()))?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(err("the image has no pixels".into()));
    }
    Ok(img.to_rgb8())
}

/// The evaluation transform without normalisation: resize the shorter side, centre-crop.
pub fn resize_and_crop(img: &RgbImage, spec: &InputSpec) -> RgbImage {
    let resized = resize_shorter(img, spec.resize as u32, Filter::Bilinear);
    center_crop(&resized, spec.height as u32, spec.width as u32)
}

/// Scales an RGB image to [0, 1] and normalises it by `spec`'s mean and std: `(3, H, W)` f32.
pub fn to_tensor(img: &RgbImage, spec: &InputSpec, device: &Device) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let (w, h) = (w as usize, h as usize);
    let mut data = vec![0f32; 3 * h * w];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            let v = px.0[c] as f32 / 255.0;
            data[c * h * w + i] = (v - spec.mean[c]) / spec.std[c];
        }
    }
    Ok(Tensor::from_vec(data, (3, h, w), device)?)
}

/// The inverse of [`to_tensor`]: a normalised `(3, H, W)` tensor back to an 8-bit picture
/// (un-normalised by `spec`, clipped to [0, 1], rounded).
///
/// ```
/// use xai_models::{preprocess, InputSpec};
/// let img = image::RgbImage::from_pixel(2, 2, image::Rgb([10, 128, 250]));
/// let spec = InputSpec::imagenet();
/// let x = preprocess::to_tensor(&img, &spec, &candle_core::Device::Cpu)?;
/// assert_eq!(preprocess::to_image(&x, &spec)?, img);
/// # Ok::<(), xai_models::Error>(())
/// ```
pub fn to_image(x: &Tensor, spec: &InputSpec) -> Result<RgbImage> {
    let (_, h, w) = x.dims3()?;
    let data = x
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    Ok(RgbImage::from_fn(w as u32, h as u32, |px, py| {
        let i = py as usize * w + px as usize;
        image::Rgb([0, 1, 2].map(|c| {
            let v = data[c * h * w + i] * spec.std[c] + spec.mean[c];
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        }))
    }))
}

/// The whole evaluation transform: resize, crop, scale, normalise → `(3, H, W)`.
pub fn preprocess(img: &RgbImage, spec: &InputSpec, device: &Device) -> Result<Tensor> {
    to_tensor(&resize_and_crop(img, spec), spec, device)
}

/// Reads a model input: an image file (preprocessed with `spec`), or a `.npy` file that
/// already holds a preprocessed `(3, H, W)` (or `(1, 3, H, W)`) float tensor.
pub fn load_input(path: impl AsRef<Path>, spec: &InputSpec, device: &Device) -> Result<Tensor> {
    let path = path.as_ref();
    if is_npy(path) {
        load_npy_chw(path, device)
    } else {
        preprocess(&load_image(path)?, spec, device)
    }
}

/// Whether `path` names a `.npy` file.
pub fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Reads a preprocessed `(3, H, W)` or `(1, 3, H, W)` tensor (f32 or f64) from a `.npy` file.
pub fn load_npy_chw(path: &Path, device: &Device) -> Result<Tensor> {
    let what = path.display().to_string();
    let array = read_npy_f32(path)?;
    let shape = array.shape().to_vec();
    let (h, w) = match shape.as_slice() {
        [3, h, w] | [1, 3, h, w] if *h > 0 && *w > 0 => (*h, *w),
        _ => {
            return Err(Error::InputShape {
                what,
                actual: shape,
                expected: "(3, height, width) or (1, 3, height, width)".into(),
            })
        }
    };
    let data: Vec<f32> = array.iter().copied().collect();
    if let Some(bad) = data.iter().find(|v| !v.is_finite()) {
        return Err(Error::InvalidInput {
            what,
            reason: format!("the tensor contains a non-finite value ({bad})"),
        });
    }
    Ok(Tensor::from_vec(data, (3, h, w), device)?)
}

fn read_npy_f32(path: &Path) -> Result<ndarray::ArrayD<f32>> {
    use ndarray_npy::ReadNpyExt;
    let open = || std::fs::File::open(path).map_err(|e| Error::io(path, e));
    match ndarray::ArrayD::<f32>::read_npy(open()?) {
        Ok(a) => Ok(a),
        Err(first) => match ndarray::ArrayD::<f64>::read_npy(open()?) {
            Ok(a) => Ok(a.mapv(|v| v as f32)),
            Err(_) => Err(Error::InvalidInput {
                what: path.display().to_string(),
                reason: format!("not a float32/float64 .npy array: {first}"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_round_is_half_even() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(16.0), 16);
        assert_eq!(round_half_even(16.4), 16);
    }

    #[test]
    fn resize_keeps_constant_images_constant() {
        let img = RgbImage::from_pixel(37, 53, image::Rgb([200, 10, 99]));
        let out = pillow_resize(&img, 11, 80, Filter::Bilinear);
        assert_eq!(out.dimensions(), (11, 80));
        assert!(out.pixels().all(|p| p.0 == [200, 10, 99]));
    }

    #[test]
    fn shorter_side_truncates_like_torchvision() {
        let img = RgbImage::new(300, 200);
        assert_eq!(
            resize_shorter(&img, 256, Filter::Bilinear).dimensions(),
            (384, 256)
        );
        let img = RgbImage::new(199, 333);
        // int(256 * 333 / 199) = 428
        assert_eq!(
            resize_shorter(&img, 256, Filter::Bilinear).dimensions(),
            (256, 428)
        );
    }

    #[test]
    fn crop_pads_small_images() {
        let img = RgbImage::from_pixel(10, 10, image::Rgb([255, 255, 255]));
        let out = center_crop(&img, 14, 14);
        assert_eq!(out.dimensions(), (14, 14));
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(7, 7).0, [255, 255, 255]);
    }
}
