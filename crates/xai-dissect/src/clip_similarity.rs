//! CLIP-Dissect's concept similarities from an image–text model: `S = Î·T̂ᵀ`, the cosines
//! between each probe image's embedding and each concept's text embedding.
//!
//! [`ClipSimilarity`] works with any [`ImageTextEncoder`] (a CLIP checkpoint, or any other
//! joint embedding). The concept texts are embedded once, when it is built; the
//! probe images chunk by chunk, as [`ConceptSimilarity::similarities`] is called. With a cache
//! folder both are kept on disk (safetensors, written atomically) and reused by later runs —
//! the reference caches the same two tensors — keyed by the encoder's identity and a hash of
//! the concepts or of the image paths and sizes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use ndarray::Array2;
use rayon::prelude::*;
use xai_models::clip::{Clip, ClipArch, ClipOptions, ClipTokenizer};

use crate::cache::{fnv1a, hash_files, save_tensors_atomic, FNV_OFFSET};
use crate::scorer::{unit_rows, ConceptSimilarity};
use crate::{Error, Result};

/// A model that embeds images and texts in one space (CLIP, or anything like it).
pub trait ImageTextEncoder {
    /// A short, stable description of the model and its weights, for cache keys and reports.
    fn identity(&self) -> String;

    /// One embedding row per text, in order (normalisation not required).
    fn embed_texts(&self, texts: &[String]) -> Result<Array2<f32>>;

    /// One embedding row per image file, in order (normalisation not required).
    fn embed_images(&self, images: &[PathBuf]) -> Result<Array2<f32>>;
}

/// A CLIP checkpoint and its tokenizer as an [`ImageTextEncoder`], as CLIP-Dissect uses them:
/// concepts tokenised bare (no prompt template, no truncation), images through CLIP's
/// bicubic resize, centre crop and normalisation.
///
/// ```
/// use std::path::PathBuf;
/// use xai_dissect::clip_similarity::{ClipEncoder, ImageTextEncoder};
/// use xai_models::clip::ClipTokenizer;
/// use xai_models::testing::{random_clip_vit, ClipVitSizes};
///
/// // A tiny random CLIP (context 77) and a tokenizer without merges (vocabulary 514).
/// let sizes = ClipVitSizes { vocab: 514, context: 77, ..ClipVitSizes::tiny() };
/// let clip = random_clip_vit(&sizes, 0, &candle_core::Device::Cpu)?;
/// let tokenizer = ClipTokenizer::from_merges_text("header").map_err(|e| {
///     xai_dissect::Error::Parameter { name: "merges", reason: e }
/// })?;
/// let encoder = ClipEncoder::new(clip, tokenizer, "tiny random clip");
/// let texts = encoder.embed_texts(&["sky".to_string(), "red brick".to_string()])?;
/// assert_eq!(texts.dim(), (2, 32));
/// # Ok::<(), xai_dissect::Error>(())
/// ```
pub struct ClipEncoder {
    clip: Clip,
    tokenizer: ClipTokenizer,
    identity: String,
    device: Device,
    batch_size: usize,
}

impl ClipEncoder {
    /// Loads the CLIP checkpoint at `weights` (OpenAI/open_clip state dict or a Hugging Face
    /// `CLIPModel`; see [`Clip::load_with`]) and the BPE merges file `vocab`
    /// (`bpe_simple_vocab_16e6.txt.gz`); with `arch`, refuses a checkpoint of another
    /// architecture.
    pub fn load(
        weights: &Path,
        vocab: &Path,
        arch: Option<ClipArch>,
        device: &Device,
    ) -> Result<Self> {
        let clip = Clip::load_with(weights, ClipOptions::default(), device)?;
        if let Some(arch) = arch {
            clip.check_arch(arch)?;
        }
        let tokenizer = ClipTokenizer::from_file(vocab)?;
        // Every id the tokenizer can give (the end token is the largest) must have an embedding.
        if tokenizer.end_id() as usize >= clip.text().vocab_size() {
            return Err(Error::Parameter {
                name: "clip_vocab",
                reason: format!(
                    "{} gives token ids up to {} but {} embeds only {}; use the merges file that came with the checkpoint",
                    vocab.display(),
                    tokenizer.end_id(),
                    weights.display(),
                    clip.text().vocab_size()
                ),
            });
        }
        let identity = format!(
            "clip {} {}",
            clip.arch_name(),
            crate::cache::file_identity(weights)?
        );
        Ok(Self::new(clip, tokenizer, identity))
    }

    /// An encoder from a loaded model and tokenizer; `identity` names them in cache keys.
    pub fn new(clip: Clip, tokenizer: ClipTokenizer, identity: impl Into<String>) -> Self {
        Self {
            device: clip.text().device().clone(),
            clip,
            tokenizer,
            identity: identity.into(),
            batch_size: 32,
        }
    }

    /// Images or texts per forward pass (default 32).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The model.
    pub fn clip(&self) -> &Clip {
        &self.clip
    }
}

impl ImageTextEncoder for ClipEncoder {
    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn embed_texts(&self, texts: &[String]) -> Result<Array2<f32>> {
        let mut rows = Vec::with_capacity(texts.len() * self.clip.embed_dim());
        for chunk in texts.chunks(self.batch_size) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let ids = self.tokenizer.tokenize_tensor(&refs, false, &self.device)?;
            let e = self.clip.encode_text(&ids)?;
            rows.extend(e.flatten_all()?.to_vec1::<f32>()?);
        }
        to_array(rows, texts.len(), self.clip.embed_dim())
    }

    fn embed_images(&self, images: &[PathBuf]) -> Result<Array2<f32>> {
        let size = self.clip.image_size() as u32;
        let mut rows = Vec::with_capacity(images.len() * self.clip.embed_dim());
        for chunk in images.chunks(self.batch_size) {
            // Decoding and resizing are per image: in parallel, before one batched forward.
            let pixels = chunk
                .par_iter()
                .map(|p| {
                    let img = xai_models::preprocess::load_image(p)?;
                    xai_models::clip::preprocess(&img, size, &Device::Cpu)
                })
                .collect::<xai_models::Result<Vec<Tensor>>>()?;
            let batch = Tensor::cat(&pixels, 0)?.to_device(&self.device)?;
            let e = self.clip.encode_image(&batch)?;
            rows.extend(e.flatten_all()?.to_vec1::<f32>()?);
        }
        to_array(rows, images.len(), self.clip.embed_dim())
    }
}

fn to_array(rows: Vec<f32>, n: usize, e: usize) -> Result<Array2<f32>> {
    Array2::from_shape_vec((n, e), rows).map_err(|err| Error::Shape {
        what: "the CLIP embeddings".into(),
        actual: vec![n, e],
        expected: err.to_string(),
    })
}

/// Concept similarities from an [`ImageTextEncoder`], with an optional on-disk cache.
///
/// ```
/// use std::path::PathBuf;
/// use ndarray::{array, Array2};
/// use xai_dissect::clip_similarity::{ClipSimilarity, ImageTextEncoder};
/// use xai_dissect::scorer::ConceptSimilarity;
///
/// /// A stand-in encoder: "red" and "blue" axes; images named after their colour.
/// struct Toy;
/// impl ImageTextEncoder for Toy {
///     fn identity(&self) -> String { "toy v1".into() }
///     fn embed_texts(&self, texts: &[String]) -> xai_dissect::Result<Array2<f32>> {
///         Ok(Array2::from_shape_fn((texts.len(), 2), |(i, j)| {
///             (texts[i] == ["red", "blue"][j]) as u8 as f32
///         }))
///     }
///     fn embed_images(&self, images: &[PathBuf]) -> xai_dissect::Result<Array2<f32>> {
///         Ok(Array2::from_shape_fn((images.len(), 2), |(i, j)| {
///             let red = images[i].to_string_lossy().contains("red");
///             if red == (j == 0) { 2.0 } else { 1.0 }
///         }))
///     }
/// }
/// let sim = ClipSimilarity::new(Toy, vec!["red".into(), "blue".into()], None)?;
/// let s = sim.similarities(0, &[PathBuf::from("red.png"), PathBuf::from("blue.png")])?;
/// assert!(s[[0, 0]] > s[[0, 1]] && s[[1, 1]] > s[[1, 0]]);
/// assert!((s[[0, 0]] - 2.0 / 5f32.sqrt()).abs() < 1e-6);
/// # Ok::<(), xai_dissect::Error>(())
/// ```
pub struct ClipSimilarity<E> {
    encoder: E,
    concepts: Vec<String>,
    text: Array2<f32>,
    /// `text` with unit rows, for the cosines of every chunk.
    text_unit: Array2<f32>,
    cache: Option<PathBuf>,
}

impl<E: ImageTextEncoder> ClipSimilarity<E> {
    /// Embeds `concepts` with `encoder` (or reads them from `cache`, a folder created if
    /// needed, when a previous run with the same encoder and concepts left them there).
    pub fn new(encoder: E, concepts: Vec<String>, cache: Option<&Path>) -> Result<Self> {
        if concepts.is_empty() {
            return Err(Error::Parameter {
                name: "concepts",
                reason: "the concept list is empty; give at least one concept".into(),
            });
        }
        let key = {
            let mut h = fnv1a(FNV_OFFSET, encoder.identity().as_bytes());
            for c in &concepts {
                h = fnv1a(h, c.as_bytes());
                h = fnv1a(h, b"\n");
            }
            h
        };
        let path = cache.map(|d| d.join(format!("text_{key:016x}.safetensors")));
        let text = match path.as_deref().map(read_embeddings).transpose()?.flatten() {
            Some(t) if t.nrows() == concepts.len() => t,
            _ => {
                let t = encoder.embed_texts(&concepts)?;
                check_rows(&t, concepts.len(), "text embeddings")?;
                if let Some(p) = &path {
                    write_embeddings(p, &t)?;
                }
                t
            }
        };
        Ok(Self {
            encoder,
            concepts,
            text_unit: unit_rows(text.view()),
            text,
            cache: cache.map(Path::to_path_buf),
        })
    }

    /// The concept text embeddings, one row per concept (as the encoder gave them).
    pub fn text_embeddings(&self) -> &Array2<f32> {
        &self.text
    }

    /// The encoder.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// The image embeddings of `images` (probe images `first ..`), from the cache when a
    /// previous run stored this chunk.
    pub fn image_embeddings(&self, first: usize, images: &[PathBuf]) -> Result<Array2<f32>> {
        let path = self.cache.as_ref().map(|d| {
            let mut h = fnv1a(FNV_OFFSET, self.encoder.identity().as_bytes());
            h = fnv1a(h, &(first as u64).to_le_bytes());
            h = hash_files(h, images);
            d.join(format!("images_{h:016x}.safetensors"))
        });
        if let Some(e) = path.as_deref().map(read_embeddings).transpose()?.flatten() {
            if e.nrows() == images.len() && e.ncols() == self.text.ncols() {
                return Ok(e);
            }
        }
        let e = self.encoder.embed_images(images)?;
        check_rows(&e, images.len(), "image embeddings")?;
        if let Some(p) = &path {
            write_embeddings(p, &e)?;
        }
        Ok(e)
    }
}

impl<E: ImageTextEncoder> ConceptSimilarity for ClipSimilarity<E> {
    fn concepts(&self) -> &[String] {
        &self.concepts
    }
    fn identity(&self) -> String {
        self.encoder.identity()
    }
    fn similarities(&self, first: usize, images: &[PathBuf]) -> Result<Array2<f32>> {
        let img = self.image_embeddings(first, images)?;
        if let Some((i, _)) = img
            .outer_iter()
            .enumerate()
            .find(|(_, r)| r.iter().all(|&v| v == 0.0) || r.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::NonFinite(format!(
                "the embedding of probe image {} is zero or not finite; its cosines are undefined",
                images[i].display()
            )));
        }
        if img.ncols() != self.text_unit.ncols() {
            return Err(Error::Shape {
                what: "the image embeddings".into(),
                actual: img.shape().to_vec(),
                expected: format!("{} columns, as the text embeddings", self.text_unit.ncols()),
            });
        }
        // S = Î·T̂ᵀ, with T̂ normalised once when the concepts were embedded.
        Ok(unit_rows(img.view()).dot(&self.text_unit.t()))
    }
}

fn check_rows(x: &Array2<f32>, rows: usize, what: &str) -> Result<()> {
    if x.nrows() != rows {
        return Err(Error::Shape {
            what: format!("the encoder's {what}"),
            actual: x.shape().to_vec(),
            expected: format!("{rows} rows, one per input"),
        });
    }
    Ok(())
}

/// The `embeddings` tensor of a cache file, `None` when there is no file yet.
fn read_embeddings(path: &Path) -> Result<Option<Array2<f32>>> {
    if !path.exists() {
        return Ok(None);
    }
    let bad = |reason: String| Error::File {
        path: path.to_path_buf(),
        reason: format!("{reason}; delete the file to recompute it"),
    };
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| bad(format!("not a readable embedding cache ({e})")))?;
    let t = tensors
        .get("embeddings")
        .ok_or_else(|| bad("no `embeddings` tensor".into()))?;
    let (n, e) = t
        .dims2()
        .map_err(|_| bad(format!("`embeddings` has shape {:?}, not 2-D", t.dims())))?;
    let data = t
        .to_dtype(candle_core::DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| bad(e.to_string()))?;
    Array2::from_shape_vec((n, e), data)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

fn write_embeddings(path: &Path, x: &Array2<f32>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    }
    let data: Vec<f32> = x.iter().copied().collect();
    let t = Tensor::from_vec(data, x.dim(), &Device::Cpu)?;
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let tensors: HashMap<String, Tensor> = [("embeddings".to_string(), t)].into();
    save_tensors_atomic(&tensors, &tmp, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Counts its calls, so tests can see what the cache spared.
    struct Counting {
        texts: Cell<usize>,
        images: Cell<usize>,
    }

    impl ImageTextEncoder for &Counting {
        fn identity(&self) -> String {
            "counting v1".into()
        }
        fn embed_texts(&self, texts: &[String]) -> Result<Array2<f32>> {
            self.texts.set(self.texts.get() + 1);
            Ok(Array2::from_shape_fn((texts.len(), 3), |(i, j)| {
                (i + j) as f32 + 1.0
            }))
        }
        fn embed_images(&self, images: &[PathBuf]) -> Result<Array2<f32>> {
            self.images.set(self.images.get() + 1);
            Ok(Array2::from_shape_fn((images.len(), 3), |(i, j)| {
                (i * j) as f32 + 1.0
            }))
        }
    }

    #[test]
    fn a_second_run_reads_both_embeddings_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let enc = Counting {
            texts: Cell::new(0),
            images: Cell::new(0),
        };
        let concepts = vec!["a".to_string(), "b".to_string()];
        let images = vec![PathBuf::from("x.png"), PathBuf::from("y.png")];
        let first = ClipSimilarity::new(&enc, concepts.clone(), Some(dir.path())).unwrap();
        let s1 = first.similarities(0, &images).unwrap();
        let second = ClipSimilarity::new(&enc, concepts, Some(dir.path())).unwrap();
        let s2 = second.similarities(0, &images).unwrap();
        assert_eq!((enc.texts.get(), enc.images.get()), (1, 1));
        assert_eq!(s1, s2);
        // Another chunk is another cache entry.
        second.similarities(2, &images).unwrap();
        assert_eq!(enc.images.get(), 2);
    }

    #[test]
    fn a_corrupt_cache_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let enc = Counting {
            texts: Cell::new(0),
            images: Cell::new(0),
        };
        let concepts = vec!["a".to_string()];
        ClipSimilarity::new(&enc, concepts.clone(), Some(dir.path())).unwrap();
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&file, b"not safetensors").unwrap();
        let err = ClipSimilarity::new(&enc, concepts, Some(dir.path()))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("text_") && err.contains("delete the file"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_concept_list_is_refused() {
        let enc = Counting {
            texts: Cell::new(0),
            images: Cell::new(0),
        };
        let err = ClipSimilarity::new(&enc, vec![], None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("concept list is empty"), "{err}");
    }
}
