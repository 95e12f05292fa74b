//! Where the concept-similarity matrix `S` (N probe images × C concepts) comes from.
//!
//! CLIP-Dissect takes `S` as the cosines between CLIP's image and text embeddings. Anything
//! that scores how much each probe image shows each concept can stand in for it:
//!
//! - [`EmbeddingSimilarity`]: precomputed image and text embeddings (from CLIP or anything
//!   else): rows L2-normalised, `S = Î·T̂ᵀ`, exactly the reference's scoring step.
//! - [`GroundTruthSimilarity`]: the offline default, the test world's per-pixel concept
//!   annotations of each probe image — no CLIP weights needed.
//! - CLIP itself: [`crate::clip_similarity::ClipSimilarity`] with a
//!   [`crate::clip_similarity::ClipEncoder`] (embeddings cached chunk by chunk).

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2, Axis, Slice};

use crate::{Error, Result};

/// A source of the concept-similarity matrix `S`.
///
/// Implementations do their concept-side work (encoding the concept texts) once, when they are
/// built; [`similarities`](Self::similarities) is then called on consecutive chunks of the
/// probe set, so image-side work can be cached and resumed chunk by chunk.
pub trait ConceptSimilarity {
    /// The concepts, in column order.
    fn concepts(&self) -> &[String];

    /// A short, stable description of what produces the scores (for cache keys and reports),
    /// e.g. `ground-truth coverage v1` or `clip ViT-B/16 <weights hash>`.
    fn identity(&self) -> String;

    /// `S` rows for probe images `first .. first + images.len()` (paths in probe order):
    /// `(images.len(), concepts().len())`.
    fn similarities(&self, first: usize, images: &[PathBuf]) -> Result<Array2<f32>>;
}

/// `S` from precomputed embeddings: image embeddings `(N, E)` and concept text embeddings
/// `(C, E)`, each row L2-normalised, `S = Î·T̂ᵀ` (cosines).
#[derive(Debug, Clone)]
pub struct EmbeddingSimilarity {
    concepts: Vec<String>,
    s: Array2<f32>,
    identity: String,
}

impl EmbeddingSimilarity {
    /// Builds `S` from the embeddings; `concepts` names the text rows.
    ///
    /// ```
    /// use ndarray::array;
    /// use xai_dissect::scorer::{ConceptSimilarity, EmbeddingSimilarity};
    /// let images = array![[2.0f32, 0.0], [1.0, 1.0]];
    /// let texts = array![[0.0f32, 3.0]];
    /// let sim = EmbeddingSimilarity::from_embeddings(images.view(), texts.view(), vec!["up".into()])?;
    /// assert!((sim.matrix()[[1, 0]] - 0.5f32.sqrt()).abs() < 1e-6);
    /// # Ok::<(), xai_dissect::Error>(())
    /// ```
    pub fn from_embeddings(
        image_emb: ArrayView2<'_, f32>,
        text_emb: ArrayView2<'_, f32>,
        concepts: Vec<String>,
    ) -> Result<Self> {
        if image_emb.ncols() != text_emb.ncols() {
            return Err(Error::Shape {
                what: "the text embeddings".into(),
                actual: text_emb.shape().to_vec(),
                expected: format!("{} columns, as the image embeddings", image_emb.ncols()),
            });
        }
        if text_emb.nrows() != concepts.len() {
            return Err(Error::Shape {
                what: "the text embeddings".into(),
                actual: text_emb.shape().to_vec(),
                expected: format!("one row per concept ({})", concepts.len()),
            });
        }
        let s = unit_rows(image_emb).dot(&unit_rows(text_emb).t());
        Ok(Self {
            concepts,
            s,
            identity: "embeddings".into(),
        })
    }

    /// Sets the identity recorded in caches (e.g. the model and files the embeddings came
    /// from).
    pub fn with_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// The whole matrix `S`.
    pub fn matrix(&self) -> ArrayView2<'_, f32> {
        self.s.view()
    }
}

/// Each row divided by its L2 norm (accumulated in f64): the reference's normalisation of
/// CLIP's embeddings before their cosines.
pub(crate) fn unit_rows(x: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut y = x.to_owned();
    for mut row in y.axis_iter_mut(Axis(0)) {
        let n = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt() as f32;
        row.mapv_inplace(|v| v / n);
    }
    y
}

impl ConceptSimilarity for EmbeddingSimilarity {
    fn concepts(&self) -> &[String] {
        &self.concepts
    }
    fn identity(&self) -> String {
        self.identity.clone()
    }
    fn similarities(&self, first: usize, images: &[PathBuf]) -> Result<Array2<f32>> {
        let end = first + images.len();
        if end > self.s.nrows() {
            return Err(Error::Shape {
                what: "the image embeddings".into(),
                actual: self.s.shape().to_vec(),
                expected: format!("at least {end} rows (one per probe image)"),
            });
        }
        Ok(self
            .s
            .slice_axis(Axis(0), Slice::from(first..end))
            .to_owned())
    }
}

/// The offline stand-in for CLIP: `S` from the test world's ground-truth concept masks.
///
/// `S[i, c] = 0.5 · present + 0.5 · coverage`, where `coverage` is the share of image `i`'s
/// pixels in concept `c`'s mask and `present` is 1 when the mask has any pixel. Why: CLIP's
/// image–text cosine mostly answers "is this visible?", with a mild preference for what fills
/// the picture; presence alone would rank a one-pixel eye like a whole background, coverage
/// alone would make small parts (eyes, wheels, chimneys) indistinguishable from absent ones.
/// The values lie in `[0, 1]` like cosines of related embeddings, so the similarity functions'
/// default temperatures behave sensibly. This measures what the *network* has learnt against
/// perfect concept annotations, which is exactly what CLIP approximates.
///
/// Masks are read from the layout `xai testworld generate` writes: for the probe image
/// `ROOT/images/NAME.png`, `ROOT/concepts/NAME/<concept>.png` (white = in the concept; a
/// missing file = absent).
#[derive(Debug, Clone)]
pub struct GroundTruthSimilarity {
    concepts: Vec<String>,
}

impl GroundTruthSimilarity {
    /// A scorer for `concepts` (usually the test world's 42, [`testworld_concepts`]).
    pub fn new(concepts: Vec<String>) -> Self {
        Self { concepts }
    }

    /// The folder of the concept masks of a probe image `ROOT/images/NAME.png`.
    pub fn concept_dir(image: &Path) -> Result<PathBuf> {
        let stem = image
            .file_stem()
            .ok_or_else(|| Error::file(image, "no file name"))?;
        let root = image
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| Error::file(image, "expected ROOT/images/NAME.png"))?;
        Ok(root.join("concepts").join(stem))
    }

    /// The ground-truth masks of one probe image: for each concept, its pixels (or none).
    pub fn masks(&self, image: &Path) -> Result<Vec<Option<image::GrayImage>>> {
        let dir = Self::concept_dir(image)?;
        if !dir.is_dir() {
            return Err(Error::file(
                image,
                format!(
                    "no concept masks at {} — the ground-truth scorer needs a probe folder written by `xai testworld generate` (or pass --clip)",
                    dir.display()
                ),
            ));
        }
        self.concepts
            .iter()
            .map(|c| {
                let p = dir.join(format!("{c}.png"));
                if !p.exists() {
                    return Ok(None);
                }
                image::open(&p)
                    .map(|m| Some(m.to_luma8()))
                    .map_err(|e| Error::file(&p, format!("cannot read the concept mask: {e}")))
            })
            .collect()
    }
}

/// The names of the test world's 42 concepts, and their kinds (`colour`, `part`, `texture`,
/// `scene`), in the test world's order.
pub fn testworld_concepts() -> Vec<(String, String)> {
    xai_testworld::scene::all_concepts()
        .into_iter()
        .map(|c| (c.name.to_string(), c.kind.name().to_string()))
        .collect()
}

impl ConceptSimilarity for GroundTruthSimilarity {
    fn concepts(&self) -> &[String] {
        &self.concepts
    }
    fn identity(&self) -> String {
        "ground-truth 0.5*present+0.5*coverage v1".into()
    }
    fn similarities(&self, _first: usize, images: &[PathBuf]) -> Result<Array2<f32>> {
        let mut out = Array2::<f32>::zeros((images.len(), self.concepts.len()));
        for (i, img) in images.iter().enumerate() {
            for (c, s) in presence_coverage(&self.masks(img)?).into_iter().enumerate() {
                out[[i, c]] = s;
            }
        }
        Ok(out)
    }
}

/// One image's row of the ground-truth `S`: `0.5 · present + 0.5 · coverage` per concept
/// mask (see [`GroundTruthSimilarity`]).
pub(crate) fn presence_coverage(masks: &[Option<image::GrayImage>]) -> Vec<f32> {
    masks
        .iter()
        .map(|m| {
            let Some(m) = m else { return 0.0 };
            let on = m.pixels().filter(|p| p.0[0] > 127).count();
            let total = (m.width() as usize * m.height() as usize).max(1);
            if on > 0 {
                0.5 + 0.5 * on as f32 / total as f32
            } else {
                0.0
            }
        })
        .collect()
}
