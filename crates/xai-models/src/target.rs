//! Targets: what scalar of the model output an explanation is about.

use candle_core::{Tensor, D};

use crate::{Error, Result};

/// Scores a batch of model outputs: `(N, K)` in, one score per image `(N,)` out.
///
/// Every explanation method explains a target. The default is the logit of a class
/// ([`ClassLogit`]), as pytorch-grad-cam's `ClassifierOutputTarget`; any closure
/// `Fn(&Tensor) -> Result<Tensor>` is a target too.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_models::{ClassLogit, Target};
///
/// let logits = Tensor::new(&[[1.0f32, 5.0, 2.0], [0.5, 0.1, 3.0]], &Device::Cpu)?;
/// let scores = ClassLogit(1).score(&logits)?;
/// assert_eq!(scores.to_vec1::<f32>()?, vec![5.0, 0.1]);
///
/// // Any closure works: here the difference between two logits.
/// let margin = |out: &Tensor| -> xai_models::Result<Tensor> {
///     Ok((out.narrow(1, 2, 1)? - out.narrow(1, 0, 1)?)?.squeeze(1)?)
/// };
/// assert_eq!(margin.score(&logits)?.to_vec1::<f32>()?, vec![1.0, 2.5]);
/// # Ok::<(), xai_models::Error>(())
/// ```
pub trait Target {
    /// The score of each image in the batch, shape `(N,)`.
    fn score(&self, output: &Tensor) -> Result<Tensor>;
}

impl<F> Target for F
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    fn score(&self, output: &Tensor) -> Result<Tensor> {
        self(output)
    }
}

/// The raw output (logit) of one class, for every image in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLogit(pub usize);

/// The softmax probability of one class, for every image in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassProbability(pub usize);

/// One class per image: the logit of `classes[i]` for image `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerImageClassLogit(pub Vec<usize>);

fn check_output(output: &Tensor, class: usize) -> Result<(usize, usize)> {
    let (n, k) = output.dims2().map_err(|_| Error::InputShape {
        what: "model output".into(),
        actual: output.dims().to_vec(),
        expected: "(batch, classes)".into(),
    })?;
    if class >= k {
        return Err(Error::Parameter {
            name: "class",
            reason: format!("class index {class} is out of range for a model with {k} outputs"),
        });
    }
    Ok((n, k))
}

impl Target for ClassLogit {
    fn score(&self, output: &Tensor) -> Result<Tensor> {
        check_output(output, self.0)?;
        Ok(output.narrow(1, self.0, 1)?.squeeze(1)?)
    }
}

impl Target for ClassProbability {
    fn score(&self, output: &Tensor) -> Result<Tensor> {
        check_output(output, self.0)?;
        let probs = candle_nn::ops::softmax(output, D::Minus1)?;
        Ok(probs.narrow(1, self.0, 1)?.squeeze(1)?)
    }
}

impl Target for PerImageClassLogit {
    fn score(&self, output: &Tensor) -> Result<Tensor> {
        let (n, _) = check_output(output, 0)?;
        if self.0.len() != n {
            return Err(Error::Parameter {
                name: "classes",
                reason: format!("{} classes given for a batch of {n} images", self.0.len()),
            });
        }
        for &c in &self.0 {
            check_output(output, c)?;
        }
        let idx =
            Tensor::from_iter(self.0.iter().map(|&c| c as u32), output.device())?.unsqueeze(1)?;
        Ok(output.gather(&idx, 1)?.squeeze(1)?)
    }
}
