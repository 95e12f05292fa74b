//! Which score of the model output each image's map explains.

use candle_core::Tensor;
use xai_models::{ClassLogit, Target};

use crate::{Error, Result};

/// What the map of each image explains.
///
/// The default, [`Targets::TopClass`], is the reference's `targets=None`: the logit of each
/// image's top-1 class (the first index on ties).
///
/// ```
/// use xai_cam::Targets;
/// use xai_models::ClassProbability;
///
/// let top = Targets::TopClass;               // argmax per image, its logit
/// let cat = Targets::Class(281);             // one class logit for every image
/// let prob = ClassProbability(281);
/// let same = Targets::Same(&prob);           // any `Target`, for every image
/// let per = Targets::PerImage(vec![&prob, &prob]); // one target per image
/// # let _ = (top, cat, same, per);
/// ```
#[derive(Default)]
pub enum Targets<'a> {
    /// The logit of each image's top-1 class.
    #[default]
    TopClass,
    /// The logit of this class, for every image.
    Class(usize),
    /// One target for every image.
    Same(&'a dyn Target),
    /// One target per image; the number must equal the batch size.
    PerImage(Vec<&'a dyn Target>),
}

impl std::fmt::Debug for Targets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TopClass => write!(f, "TopClass"),
            Self::Class(c) => write!(f, "Class({c})"),
            Self::Same(_) => write!(f, "Same(<target>)"),
            Self::PerImage(v) => write!(f, "PerImage(<{} targets>)", v.len()),
        }
    }
}

enum One<'a> {
    Logit(ClassLogit),
    Dyn(&'a dyn Target),
}

impl One<'_> {
    fn score(&self, output: &Tensor) -> Result<Tensor> {
        Ok(match self {
            One::Logit(t) => t.score(output)?,
            One::Dyn(t) => t.score(output)?,
        })
    }
}

/// [`Targets`] resolved for one batch: one target per image.
pub struct ImageTargets<'a> {
    per_image: Vec<One<'a>>,
    classes: Option<Vec<usize>>,
}

impl std::fmt::Debug for ImageTargets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageTargets")
            .field("images", &self.per_image.len())
            .field("classes", &self.classes)
            .finish()
    }
}

impl<'a> ImageTargets<'a> {
    /// Resolves `targets` for a batch whose model output is `output` `(batch, classes)`.
    pub fn resolve(targets: &Targets<'a>, output: &Tensor) -> Result<Self> {
        let (batch, k) = output.dims2().map_err(|_| Error::Shape {
            what: "model output".into(),
            actual: output.dims().to_vec(),
            expected: "(batch, classes)".into(),
        })?;
        let class_ok = |c: usize| {
            if c < k {
                Ok(c)
            } else {
                Err(Error::param(
                    "class",
                    format!("class index {c} is out of range for a model with {k} outputs"),
                ))
            }
        };
        Ok(match targets {
            Targets::TopClass => {
                let rows = output.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
                let classes: Vec<usize> = rows
                    .iter()
                    .map(|r| {
                        let mut best = 0;
                        for (i, &v) in r.iter().enumerate() {
                            // `>` keeps the first index on ties (numpy's argmax); NaN never wins.
                            if v > r[best] || r[best].is_nan() && !v.is_nan() {
                                best = i;
                            }
                        }
                        best
                    })
                    .collect();
                Self {
                    per_image: classes.iter().map(|&c| One::Logit(ClassLogit(c))).collect(),
                    classes: Some(classes),
                }
            }
            Targets::Class(c) => {
                let c = class_ok(*c)?;
                Self {
                    per_image: (0..batch).map(|_| One::Logit(ClassLogit(c))).collect(),
                    classes: Some(vec![c; batch]),
                }
            }
            Targets::Same(t) => Self {
                per_image: (0..batch).map(|_| One::Dyn(*t)).collect(),
                classes: None,
            },
            Targets::PerImage(v) => {
                if v.len() != batch {
                    return Err(Error::param(
                        "targets",
                        format!("{} targets given for a batch of {batch} images", v.len()),
                    ));
                }
                Self {
                    per_image: v.iter().map(|t| One::Dyn(*t)).collect(),
                    classes: None,
                }
            }
        })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.per_image.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.per_image.is_empty()
    }

    /// The class of each image, when the targets are class logits.
    pub fn classes(&self) -> Option<&[usize]> {
        self.classes.as_deref()
    }

    /// The scores `(n,)` of image `image`'s target on `n` outputs `(n, classes)` (e.g. of
    /// perturbed copies of that image).
    pub fn score_image(&self, image: usize, outputs: &Tensor) -> Result<Tensor> {
        let t = self.per_image.get(image).ok_or_else(|| {
            Error::param(
                "image",
                format!("image {image} of a batch of {}", self.len()),
            )
        })?;
        let s = t.score(outputs)?;
        if s.dims() != [outputs.dim(0)?] {
            return Err(Error::Shape {
                what: "target score".into(),
                actual: s.dims().to_vec(),
                expected: format!("({},), one score per output row", outputs.dim(0)?),
            });
        }
        Ok(s)
    }

    /// `target_b(output_b)` for every image `b` of a batch output, `(batch,)`.
    pub fn score_batch(&self, output: &Tensor) -> Result<Tensor> {
        let n = output.dim(0)?;
        if n != self.len() {
            return Err(Error::param(
                "targets",
                format!("{} targets for a batch of {n} outputs", self.len()),
            ));
        }
        if let Some(classes) = &self.classes {
            let idx = Tensor::from_iter(classes.iter().map(|&c| c as u32), output.device())?
                .unsqueeze(1)?;
            return Ok(output.gather(&idx, 1)?.squeeze(1)?);
        }
        let parts = (0..n)
            .map(|b| self.score_image(b, &output.narrow(0, b, 1)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// Scores of a mixed batch: row `i` of `outputs` is scored with image `images[i]`'s target.
    pub(crate) fn score_rows(&self, images: &[usize], outputs: &Tensor) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(images.len());
        let mut start = 0;
        while start < images.len() {
            let b = images[start];
            let mut end = start + 1;
            while end < images.len() && images[end] == b {
                end += 1;
            }
            let s = self.score_image(b, &outputs.narrow(0, start, end - start)?)?;
            out.extend(s.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?);
            start = end;
        }
        Ok(out)
    }
}
