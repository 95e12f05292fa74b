//! Faithfulness with a model: deletion and insertion curves (Petsiuk et al., RISE 2018), and
//! the confidence change when the input is multiplied by the map (pytorch-grad-cam's
//! `CamMultImageConfidenceChange`, `DropInConfidence`, `IncreaseInConfidence`; Grad-CAM++'s
//! average drop and increase in confidence).

use candle_core::{Device, Tensor};
use ndarray::{Array3, ArrayView2, ArrayView3};
use xai_models::{Backbone, Target};

use crate::error::{check_finite, Error, Result};

/// Scores preprocessed images `(N, 3, H, W)` with one target, in batches of `batch_size`.
pub(crate) fn score_batches(
    model: &dyn Backbone,
    target: &dyn Target,
    images: &[f32],
    shape: (usize, usize, usize),
    batch_size: usize,
) -> Result<Vec<f32>> {
    let per = shape.0 * shape.1 * shape.2;
    let n = images.len() / per.max(1);
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(n);
        let t = Tensor::from_slice(
            &images[start * per..end * per],
            (end - start, shape.0, shape.1, shape.2),
            &Device::Cpu,
        )?
        .to_device(model.device())?;
        let s = target.score(&model.forward(&t)?)?;
        out.extend(s.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// `(3, H, W)` image from a tensor (a leading batch axis of 1 is accepted), on the host.
pub(crate) fn image_data(image: &Tensor) -> Result<(Vec<f32>, (usize, usize, usize))> {
    let image = if image.rank() == 4 && image.dim(0)? == 1 {
        image.squeeze(0)?
    } else {
        image.clone()
    };
    let (c, h, w) = image
        .dims3()
        .map_err(|_| Error::shape("image", image.dims(), "(3, H, W), a preprocessed image"))?;
    let data = image
        .to_dtype(candle_core::DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok((data, (c, h, w)))
}

pub(crate) fn check_map(map: ArrayView2<'_, f32>, h: usize, w: usize) -> Result<()> {
    if map.dim() != (h, w) {
        return Err(Error::shape(
            "map",
            &[map.dim().0, map.dim().1],
            format!("({h}, {w}), the image's size (resize the map first)"),
        ));
    }
    check_finite("map", map.iter())
}

/// Settings of [`deletion`] and [`insertion`].
///
/// ```
/// use xai_metrics::DeletionConfig;
/// let cfg = DeletionConfig::default().with_steps(100, 224, 224)?;
/// assert_eq!(cfg.step, 502);                        // ⌈224²/100⌉ pixels per step
/// assert!(DeletionConfig::default().with_steps(0, 224, 224).is_err());
/// # Ok::<(), xai_metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeletionConfig {
    /// Pixels moved per step (RISE: 224 at 224², i.e. 224 steps). Default 224.
    pub step: usize,
    /// Images per model call. Default 32.
    pub batch_size: usize,
    /// Side of the Gaussian kernel blurring insertion's start image. Default 11 (RISE).
    pub blur_kernel: usize,
    /// σ of that kernel in pixels. Default 5 (RISE).
    pub blur_sigma: f32,
}

impl Default for DeletionConfig {
    fn default() -> Self {
        Self {
            step: 224,
            batch_size: 32,
            blur_kernel: 11,
            blur_sigma: 5.0,
        }
    }
}

impl DeletionConfig {
    /// The step that makes `steps` steps on an `height × width` image.
    pub fn with_steps(mut self, steps: usize, height: usize, width: usize) -> Result<Self> {
        if steps == 0 || height * width == 0 {
            return Err(Error::param(
                "steps",
                "give at least one step on a non-empty image",
            ));
        }
        self.step = (height * width).div_ceil(steps);
        Ok(self)
    }

    /// Sets the images per model call.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    fn check(&self) -> Result<()> {
        if self.step == 0 {
            return Err(Error::param("step", "move at least one pixel per step"));
        }
        if self.batch_size == 0 {
            return Err(Error::param(
                "batch_size",
                "give at least one image per batch",
            ));
        }
        if self.blur_kernel == 0
            || self.blur_kernel % 2 == 0
            || self.blur_sigma.is_nan()
            || self.blur_sigma <= 0.0
        {
            return Err(Error::param(
                "blur",
                "the kernel side must be odd and σ positive (RISE: 11 and 5)",
            ));
        }
        Ok(())
    }
}

/// A deletion or insertion curve: the score after each step, and its area.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Curve {
    /// The fraction of pixels moved at each point, from 0 to 1 (`n + 1` points).
    pub fractions: Vec<f32>,
    /// The target's score at each point.
    pub scores: Vec<f32>,
    /// The area under the curve by the trapezoid rule over `n` equal steps:
    /// `(Σs − s₀/2 − sₙ/2) / n`.
    pub auc: f32,
}

/// The trapezoid area of `n + 1` scores over `n` equal steps on `[0, 1]`.
///
/// ```
/// assert_eq!(xai_metrics::auc(&[1.0, 0.5, 0.0]), 0.5);
/// ```
pub fn auc(scores: &[f32]) -> f32 {
    if scores.len() < 2 {
        return scores.first().copied().unwrap_or(0.0);
    }
    let n = (scores.len() - 1) as f64;
    let sum: f64 = scores.iter().map(|&v| v as f64).sum();
    let ends = (scores[0] as f64 + scores[scores.len() - 1] as f64) / 2.0;
    ((sum - ends) / n) as f32
}

/// Gaussian blur of a `(C, H, W)` image with a normalised `k × k` kernel, zero padding (as
/// RISE's `conv2d(…, padding=k//2)`); separable.
pub fn gaussian_blur(image: ArrayView3<'_, f32>, kernel: usize, sigma: f32) -> Array3<f32> {
    let r = (kernel / 2) as isize;
    let taps: Vec<f32> = (-r..=r)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = taps.iter().sum();
    let taps: Vec<f32> = taps.iter().map(|t| t / total).collect();
    let (c, h, w) = image.dim();
    let mut tmp = Array3::<f32>::zeros((c, h, w));
    let mut out = Array3::<f32>::zeros((c, h, w));
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let mut s = 0f32;
                for (k, t) in taps.iter().enumerate() {
                    let xx = x as isize + k as isize - r;
                    if xx >= 0 && (xx as usize) < w {
                        s += t * image[[ch, y, xx as usize]];
                    }
                }
                tmp[[ch, y, x]] = s;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let mut s = 0f32;
                for (k, t) in taps.iter().enumerate() {
                    let yy = y as isize + k as isize - r;
                    if yy >= 0 && (yy as usize) < h {
                        s += t * tmp[[ch, yy as usize, x]];
                    }
                }
                out[[ch, y, x]] = s;
            }
        }
    }
    out
}

/// Pixel indices by decreasing saliency (ties: earlier pixel first).
fn saliency_order(map: ArrayView2<'_, f32>) -> Vec<usize> {
    let values: Vec<f32> = map.iter().copied().collect();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order
}

/// Moves pixels from `start` to `finish` in saliency order, scoring after every step; the
/// images of one batch are built only when that batch runs.
fn perturbation_curve(
    model: &dyn Backbone,
    target: &dyn Target,
    start: &[f32],
    finish: &[f32],
    shape: (usize, usize, usize),
    map: ArrayView2<'_, f32>,
    cfg: &DeletionConfig,
) -> Result<Curve> {
    cfg.check()?;
    let (c, h, w) = shape;
    let hw = h * w;
    let order = saliency_order(map);
    let n = hw.div_ceil(cfg.step);
    let mut current = start.to_vec();
    let mut moved = 0usize;
    let mut scores = Vec::with_capacity(n + 1);
    let mut point = 0usize;
    while point <= n {
        let batch_end = (point + cfg.batch_size).min(n + 1);
        let mut batch = Vec::with_capacity((batch_end - point) * c * hw);
        for i in point..batch_end {
            let upto = (i * cfg.step).min(hw);
            for &p in &order[moved..upto] {
                for ch in 0..c {
                    current[ch * hw + p] = finish[ch * hw + p];
                }
            }
            moved = upto;
            batch.extend_from_slice(&current);
        }
        scores.extend(score_batches(model, target, &batch, shape, cfg.batch_size)?);
        point = batch_end;
    }
    let fractions = (0..=n)
        .map(|i| (i * cfg.step).min(hw) as f32 / hw as f32)
        .collect();
    Ok(Curve {
        fractions,
        auc: auc(&scores),
        scores,
    })
}

/// Deletion curve: the most salient pixels of the preprocessed `image` `(3, H, W)` set to zero
/// first, `cfg.step` at a time; `target` scores each step (RISE uses the softmax probability
/// of the top class, [`xai_models::ClassProbability`]). Lower AUC is better.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_metrics::{deletion, DeletionConfig};
/// let dev = Device::Cpu;
/// let model = xai_models::testing::random_resnet(
///     xai_models::ResNetConfig::resnet18().with_width(4).with_classes(5), 0, &dev)?;
/// let x = Tensor::randn(0f32, 1.0, (3, 32, 32), &dev)?;
/// let map = ndarray::Array2::from_shape_fn((32, 32), |(r, c)| (r * c) as f32);
/// let cfg = DeletionConfig::default().with_steps(8, 32, 32)?;
/// let curve = deletion(&model, &xai_models::ClassProbability(0), &x, map.view(), &cfg)?;
/// assert_eq!(curve.scores.len(), 9);
/// assert_eq!(curve.fractions[8], 1.0);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn deletion(
    model: &dyn Backbone,
    target: &dyn Target,
    image: &Tensor,
    map: ArrayView2<'_, f32>,
    cfg: &DeletionConfig,
) -> Result<Curve> {
    let (data, shape) = image_data(image)?;
    check_map(map, shape.1, shape.2)?;
    let zeros = vec![0f32; data.len()];
    perturbation_curve(model, target, &data, &zeros, shape, map, cfg)
}

/// Insertion curve: from a blurred copy of `image` (Gaussian, `cfg.blur_kernel`,
/// `cfg.blur_sigma`), the most salient pixels of the original put back first. Higher AUC is
/// better.
pub fn insertion(
    model: &dyn Backbone,
    target: &dyn Target,
    image: &Tensor,
    map: ArrayView2<'_, f32>,
    cfg: &DeletionConfig,
) -> Result<Curve> {
    let (data, shape) = image_data(image)?;
    check_map(map, shape.1, shape.2)?;
    cfg.check()?;
    let view = ArrayView3::from_shape(shape, &data)
        .map_err(|_| Error::shape("image", &[data.len()], "C·H·W values"))?;
    let blurred = gaussian_blur(view, cfg.blur_kernel, cfg.blur_sigma);
    let blurred: Vec<f32> = blurred.iter().copied().collect();
    perturbation_curve(model, target, &blurred, &data, shape, map, cfg)
}

/// The target's score on each image before and after multiplying it by its map (the
/// reference's `CamMultImageConfidenceChange` core): `X' = X ⊙ map`, broadcast over channels,
/// on the preprocessed tensor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfidenceScores {
    /// `y`: the score on each image.
    pub before: Vec<f32>,
    /// `y'`: the score on each image times its map.
    pub after: Vec<f32>,
}

impl ConfidenceScores {
    /// Runs the model on `images` `(B, 3, H, W)` and on `images ⊙ maps` (`maps` `(B, H, W)`,
    /// usually in `[0, 1]`); image `i` is scored by `targets[i]`. Two batched model calls.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use xai_metrics::ConfidenceScores;
    /// let dev = Device::Cpu;
    /// let model = xai_models::testing::random_resnet(
    ///     xai_models::ResNetConfig::resnet18().with_width(4).with_classes(5), 0, &dev)?;
    /// let x = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &dev)?;
    /// let ones = ndarray::Array3::<f32>::ones((2, 32, 32));
    /// let t = xai_models::ClassProbability(1);
    /// let s = ConfidenceScores::compute(&model, &x, ones.view(), &[&t, &t])?;
    /// // A map of ones changes nothing.
    /// assert!(s.change().iter().all(|d| d.abs() < 1e-6));
    /// # Ok::<(), xai_metrics::Error>(())
    /// ```
    pub fn compute(
        model: &dyn Backbone,
        images: &Tensor,
        maps: ArrayView3<'_, f32>,
        targets: &[&dyn Target],
    ) -> Result<Self> {
        let (b, c, h, w) = images
            .dims4()
            .map_err(|_| Error::shape("images", images.dims(), "(B, 3, H, W)"))?;
        if maps.dim() != (b, h, w) {
            let d = maps.dim();
            return Err(Error::shape(
                "maps",
                &[d.0, d.1, d.2],
                format!("({b}, {h}, {w})"),
            ));
        }
        if targets.len() != b {
            return Err(Error::param(
                "targets",
                format!(
                    "{} targets for {b} images; give one per image",
                    targets.len()
                ),
            ));
        }
        check_finite("maps", maps.iter())?;
        let data = images
            .to_dtype(candle_core::DType::F32)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let hw = h * w;
        let mut masked = data.clone();
        for (i, v) in masked.iter_mut().enumerate() {
            let img = i / (c * hw);
            let p = i % hw;
            *v *= maps[[img, p / w, p % w]];
        }
        let score = |data: &[f32]| -> Result<Vec<f32>> {
            let t =
                Tensor::from_slice(data, (b, c, h, w), &Device::Cpu)?.to_device(model.device())?;
            let out = model.forward(&t)?;
            (0..b)
                .map(|i| {
                    let s = targets[i].score(&out.narrow(0, i, 1)?)?;
                    Ok(s.flatten_all()?.to_vec1::<f32>()?[0])
                })
                .collect()
        };
        Ok(Self {
            before: score(&data)?,
            after: score(&masked)?,
        })
    }

    /// `y' − y` per image (`CamMultImageConfidenceChange`).
    pub fn change(&self) -> Vec<f32> {
        self.before
            .iter()
            .zip(&self.after)
            .map(|(y, o)| o - y)
            .collect()
    }

    /// `max(y − y', 0)` per image (the reference's `DropInConfidence`: raw, not divided by y).
    pub fn drop_in_confidence(&self) -> Vec<f32> {
        self.before
            .iter()
            .zip(&self.after)
            .map(|(y, o)| (y - o).max(0.0))
            .collect()
    }

    /// `1` where `y' > y`, else `0` (the reference's `IncreaseInConfidence`).
    pub fn increase_in_confidence(&self) -> Vec<f32> {
        self.before
            .iter()
            .zip(&self.after)
            .map(|(y, o)| if o - y > 0.0 { 1.0 } else { 0.0 })
            .collect()
    }

    /// Average drop in per cent (Chattopadhyay et al., Grad-CAM++):
    /// `100/N · Σ max(0, y − y') / y`. Meant for positive scores (probabilities).
    pub fn average_drop(&self) -> f32 {
        let n = self.before.len().max(1) as f32;
        100.0 / n
            * self
                .before
                .iter()
                .zip(&self.after)
                .map(|(y, o)| (y - o).max(0.0) / y)
                .sum::<f32>()
    }

    /// Increase in confidence in per cent (Grad-CAM++): `100/N · Σ 1[y < y']`.
    pub fn average_increase(&self) -> f32 {
        let n = self.before.len().max(1) as f32;
        100.0 / n * self.increase_in_confidence().iter().sum::<f32>()
    }
}
