//! CLIP's image transform: Pillow-bicubic resize of the shorter side, centre crop, scale to
//! [0, 1], normalise by CLIP's mean and standard deviation.

use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::preprocess::{center_crop, resize_shorter, Filter};
use crate::Result;

/// The per-channel mean CLIP's images are normalised by (RGB, after scaling to [0, 1]).
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];

/// The per-channel standard deviation CLIP's images are normalised by.
// OpenAI's decimals as published, so they can be checked by eye; they round to the same f32.
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The geometric part of CLIP's transform: the shorter side resized to `size` with Pillow's
/// bicubic filter, then the centre `size × size` crop.
pub fn resize_and_crop(img: &RgbImage, size: u32) -> RgbImage {
    center_crop(&resize_shorter(img, size, Filter::Bicubic), size, size)
}

/// CLIP's transform of one image to a `(1, 3, size, size)` tensor: exactly torchvision's
/// `Resize(size, BICUBIC)`, `CenterCrop(size)`, `ToTensor()`, `Normalize(CLIP_MEAN, CLIP_STD)`
/// on a PIL image (the transform of OpenAI's `clip.load` and open_clip).
///
/// ```
/// use xai_models::clip;
/// let img = image::RgbImage::from_pixel(300, 200, image::Rgb([255, 128, 0]));
/// let x = clip::preprocess(&img, 224, &candle_core::Device::Cpu)?;
/// assert_eq!(x.dims(), &[1, 3, 224, 224]);
/// let red = x.get(0)?.get(0)?.get(0)?.get(0)?.to_scalar::<f32>()?;
/// assert!((red - (1.0 - clip::CLIP_MEAN[0]) / clip::CLIP_STD[0]).abs() < 1e-6);
/// # Ok::<(), xai_models::Error>(())
/// ```
pub fn preprocess(img: &RgbImage, size: u32, device: &Device) -> Result<Tensor> {
    let img = resize_and_crop(img, size);
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = (px.0[c] as f32 / 255.0 - CLIP_MEAN[c]) / CLIP_STD[c];
        }
    }
    Ok(Tensor::from_vec(
        data,
        (1, 3, h as usize, w as usize),
        device,
    )?)
}
