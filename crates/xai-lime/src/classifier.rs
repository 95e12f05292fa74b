//! What LIME explains: anything that scores a batch of images.

use candle_core::{Tensor, D};
use ndarray::{Array2, ArrayView4};
use xai_models::Backbone;

use crate::{Error, Result};

/// A black-box image classifier: a batch of `(batch, height, width, 3)` 8-bit RGB images in,
/// a `(batch, classes)` score matrix out (lime's `classifier_fn`).
///
/// Closures implement it, so any model can be explained:
///
/// ```
/// use ndarray::{Array2, ArrayView4};
/// use xai_lime::Classifier;
/// // "redness": the mean red value, and its complement.
/// let mut redness = |batch: ArrayView4<'_, u8>| -> xai_lime::Result<Array2<f64>> {
///     let b = batch.dim().0;
///     Ok(Array2::from_shape_fn((b, 2), |(i, k)| {
///         let red = batch.slice(ndarray::s![i, .., .., 0]).mapv(f64::from).mean().unwrap_or(0.0) / 255.0;
///         if k == 0 { red } else { 1.0 - red }
///     }))
/// };
/// let batch = ndarray::Array4::<u8>::from_elem((1, 2, 2, 3), 255);
/// assert_eq!(redness.classify(batch.view())?[[0, 0]], 1.0);
/// # Ok::<(), xai_lime::Error>(())
/// ```
pub trait Classifier {
    /// Scores each image of the batch; one row per image.
    fn classify(&mut self, batch: ArrayView4<'_, u8>) -> Result<Array2<f64>>;
}

impl<F> Classifier for F
where
    F: FnMut(ArrayView4<'_, u8>) -> Result<Array2<f64>>,
{
    fn classify(&mut self, batch: ArrayView4<'_, u8>) -> Result<Array2<f64>> {
        self(batch)
    }
}

/// What a [`BackboneClassifier`] returns per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// Softmax probabilities (what lime's PyTorch tutorial explains).
    #[default]
    Probabilities,
    /// Raw logits.
    Logits,
}

/// Any backbone of ours as a LIME classifier: images are scaled to [0, 1] and normalised with
/// the model's mean and standard deviation (no resizing: explain images already at the model's
/// input size), run through the model, and scored as probabilities or logits.
///
/// ```
/// use xai_lime::{BackboneClassifier, Classifier};
/// let config = xai_models::ResNetConfig::resnet18().with_width(4).with_classes(3);
/// let model = xai_models::testing::random_resnet(config, 0, &candle_core::Device::Cpu)?;
/// let mut classifier = BackboneClassifier::new(&model);
/// let batch = ndarray::Array4::<u8>::from_elem((2, 32, 32, 3), 128);
/// let scores = classifier.classify(batch.view())?;
/// assert_eq!(scores.dim(), (2, 3));
/// assert!((scores.row(0).sum() - 1.0).abs() < 1e-5);
/// # Ok::<(), xai_lime::Error>(())
/// ```
pub struct BackboneClassifier<'a> {
    model: &'a dyn Backbone,
    kind: ScoreKind,
    lut: [[f32; 256]; 3],
}

impl std::fmt::Debug for BackboneClassifier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackboneClassifier")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<'a> BackboneClassifier<'a> {
    /// Scores with `model`, as softmax probabilities.
    pub fn new(model: &'a dyn Backbone) -> Self {
        let spec = model.input_spec();
        let mut lut = [[0f32; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = (v as f32 / 255.0 - spec.mean[c]) / spec.std[c];
            }
        }
        Self {
            model,
            kind: ScoreKind::Probabilities,
            lut,
        }
    }

    /// Returns logits or probabilities.
    pub fn with_scores(mut self, kind: ScoreKind) -> Self {
        self.kind = kind;
        self
    }

    /// The model input `(batch, 3, height, width)` for a batch of images.
    pub fn input(&self, batch: ArrayView4<'_, u8>) -> Result<Tensor> {
        let (b, h, w, c) = batch.dim();
        if c != 3 {
            return Err(Error::Shape {
                what: "image batch".into(),
                actual: vec![b, h, w, c],
                expected: "(batch, height, width, 3)".into(),
            });
        }
        let plane = h * w;
        let mut data = vec![0f32; b * 3 * plane];
        for (i, image) in batch.outer_iter().enumerate() {
            let out = &mut data[i * 3 * plane..(i + 1) * 3 * plane];
            for (p, px) in image.rows().into_iter().enumerate() {
                for ch in 0..3 {
                    out[ch * plane + p] = self.lut[ch][px[ch] as usize];
                }
            }
        }
        Ok(Tensor::from_vec(data, (b, 3, h, w), self.model.device())?)
    }
}

impl Classifier for BackboneClassifier<'_> {
    fn classify(&mut self, batch: ArrayView4<'_, u8>) -> Result<Array2<f64>> {
        let b = batch.dim().0;
        let x = self.input(batch)?;
        let out = self.model.forward(&x)?;
        let out = match self.kind {
            ScoreKind::Probabilities => softmax_last(&out)?,
            ScoreKind::Logits => out,
        };
        let rows = out.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        let k = rows.first().map_or(0, Vec::len);
        let flat: Vec<f64> = rows.into_iter().flatten().map(f64::from).collect();
        Array2::from_shape_vec((b, k), flat).map_err(|e| Error::Classifier(e.to_string()))
    }
}

/// Softmax over the last axis, computed stably (max subtracted).
fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    Ok(e.broadcast_div(&sum)?)
}
