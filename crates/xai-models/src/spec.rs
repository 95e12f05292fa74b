//! What input a model expects.

use serde::{Deserialize, Serialize};

/// The input a backbone expects: the evaluation transform that turns an image into its tensor.
///
/// ```
/// let spec = xai_models::InputSpec::imagenet();
/// assert_eq!((spec.height, spec.width, spec.resize), (224, 224, 256));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Height of the network input after the centre crop.
    pub height: usize,
    /// Width of the network input after the centre crop.
    pub width: usize,
    /// The shorter side is resized to this before cropping (torchvision `Resize(resize)`).
    pub resize: usize,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by after subtracting the mean.
    pub std: [f32; 3],
}

impl InputSpec {
    /// torchvision's ImageNet evaluation transform: resize 256, centre-crop 224, ImageNet mean/std.
    pub fn imagenet() -> Self {
        Self {
            height: 224,
            width: 224,
            resize: 256,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    /// The same normalisation at another square size, resizing to `size * 256 / 224`.
    pub fn imagenet_at(size: usize) -> Self {
        Self {
            height: size,
            width: size,
            resize: (size * 256).div_ceil(224),
            ..Self::imagenet()
        }
    }
}

impl Default for InputSpec {
    fn default() -> Self {
        Self::imagenet()
    }
}
