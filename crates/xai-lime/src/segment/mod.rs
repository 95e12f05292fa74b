//! Superpixel segmentation with scikit-image's semantics: quickshift, SLIC and felzenszwalb.
//!
//! Every segmenter takes an image as scikit-image sees it after `img_as_float`: an
//! `(height, width, channels)` array of `f64` (see [`image_to_float`]), and returns an
//! `(height, width)` `i32` label map numbered as scikit-image numbers it. On the same image
//! (and, for quickshift, the same tie-breaking noise) the label maps are identical to
//! scikit-image 0.19–0.26's; `docs/PARITY.md` lists what was compared.
//!
//! | method | type | reference |
//! |---|---|---|
//! | quickshift | [`Quickshift`] | Vedaldi & Soatto, *Quick shift and kernel methods for mode seeking*, ECCV 2008 |
//! | SLIC | [`Slic`] | Achanta et al., *SLIC superpixels compared to state-of-the-art superpixel methods*, TPAMI 2012 |
//! | felzenszwalb | [`Felzenszwalb`] | Felzenszwalb & Huttenlocher, *Efficient graph-based image segmentation*, IJCV 2004 |
//!
//! [`SegmentMethod`] holds any of them, (de)serialises its parameters as JSON and is built from
//! a method name. The building blocks are public too: [`color::rgb2lab`] and
//! [`gaussian::gaussian_filter`].
//!
//! ```
//! use ndarray::Array3;
//! use xai_lime::segment::{Felzenszwalb, Quickshift, SegmentMethod, Segmenter, Slic};
//!
//! // A 32×32 image: a red square on a blue background.
//! let image = Array3::from_shape_fn((32, 32, 3), |(y, x, c)| {
//!     let inside = (8..24).contains(&y) && (8..24).contains(&x);
//!     match (inside, c) { (true, 0) | (false, 2) => 1.0, _ => 0.0 }
//! });
//! let labels = Felzenszwalb::default().segment(image.view())?;
//! assert_eq!(labels.dim(), (32, 32));
//! assert_eq!(labels[[0, 0]], 0);                      // numbered by first pixel
//! assert_ne!(labels[[16, 16]], labels[[0, 0]]);
//!
//! let slic = Slic { n_segments: 4, ..Slic::default() };
//! assert!(slic.segment(image.view())?.iter().all(|&l| l >= 1)); // start_label = 1
//!
//! // Parameters as JSON, for logs and a parameter search.
//! let method = SegmentMethod::Quickshift(Quickshift::default());
//! let json = serde_json::to_string(&method).unwrap();
//! let back: SegmentMethod = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, method);
//! # Ok::<(), xai_lime::Error>(())
//! ```

use ndarray::{Array2, Array3, ArrayView3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub mod color;
mod felzenszwalb;
pub mod gaussian;
pub mod numpy_rng;
mod quickshift;
mod slic;

pub use felzenszwalb::Felzenszwalb;
pub use quickshift::Quickshift;
pub use slic::Slic;

/// A superpixel segmentation algorithm.
pub trait Segmenter: Send + Sync + std::fmt::Debug {
    /// A short name for logs and file metadata (`quickshift`, `slic`, `felzenszwalb`).
    fn name(&self) -> &'static str;

    /// Segments an `(height, width, channels)` float image into an `(height, width)` label map.
    fn segment(&self, image: ArrayView3<'_, f64>) -> Result<Array2<i32>>;
}

/// scikit-image's `img_as_float` of an 8-bit RGB image: `x · (1/255)`, as `(height, width, 3)`.
pub fn image_to_float(image: &image::RgbImage) -> Array3<f64> {
    let (w, h) = image.dimensions();
    let scale = 1.0 / 255.0;
    Array3::from_shape_fn((h as usize, w as usize, 3), |(y, x, c)| {
        f64::from(image.get_pixel(x as u32, y as u32)[c]) * scale
    })
}

/// Any of the segmenters, with its parameters: what a CLI flag or a parameter search picks.
///
/// Serialised as JSON with a `method` tag and the fields of the segmenter; fields left out
/// take their defaults, unknown fields are an error:
/// `{"method": "slic", "n_segments": 50, "compactness": 20.0}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum SegmentMethod {
    /// [`Quickshift`].
    Quickshift(Quickshift),
    /// [`Slic`].
    Slic(Slic),
    /// [`Felzenszwalb`].
    Felzenszwalb(Felzenszwalb),
}

impl SegmentMethod {
    /// The method names [`SegmentMethod::with_defaults`] accepts.
    pub const NAMES: [&'static str; 3] = ["quickshift", "slic", "felzenszwalb"];

    /// The method called `name` with its default parameters (LIME's for quickshift,
    /// scikit-image's for the others). The name is case-insensitive.
    pub fn with_defaults(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "quickshift" => Ok(Self::Quickshift(Quickshift::default())),
            "slic" => Ok(Self::Slic(Slic::default())),
            "felzenszwalb" => Ok(Self::Felzenszwalb(Felzenszwalb::default())),
            _ => Err(Error::param(
                "method",
                format!(
                    "unknown segmentation method `{name}`; expected one of {}",
                    Self::NAMES.join(", ")
                ),
            )),
        }
    }

    /// Checks the parameters without segmenting anything.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Quickshift(m) => m.validate(),
            Self::Slic(m) => m.validate(),
            Self::Felzenszwalb(m) => m.validate(),
        }
    }

    /// The segmenter as a trait object.
    pub fn into_boxed(self) -> Box<dyn Segmenter> {
        match self {
            Self::Quickshift(m) => Box::new(m),
            Self::Slic(m) => Box::new(m),
            Self::Felzenszwalb(m) => Box::new(m),
        }
    }
}

impl Segmenter for SegmentMethod {
    fn name(&self) -> &'static str {
        match self {
            Self::Quickshift(m) => m.name(),
            Self::Slic(m) => m.name(),
            Self::Felzenszwalb(m) => m.name(),
        }
    }

    fn segment(&self, image: ArrayView3<'_, f64>) -> Result<Array2<i32>> {
        match self {
            Self::Quickshift(m) => m.segment(image),
            Self::Slic(m) => m.segment(image),
            Self::Felzenszwalb(m) => m.segment(image),
        }
    }
}

/// The large buffers of a segmentation, kept per thread between calls so repeated calls (a
/// parameter search, a folder of images) reuse their memory instead of faulting in fresh
/// pages each time. Take them with [`Buffers::take`] and hand them back with
/// [`Buffers::give_back`], which frees any buffer over [`Buffers::KEEP_BYTES`].
#[derive(Default)]
pub(crate) struct Buffers {
    /// Planar channels: felzenszwalb's smoothed image, SLIC's scaled Lab.
    pub(crate) planes: Vec<Vec<f64>>,
    /// felzenszwalb's sorted edges.
    pub(crate) edges: Vec<u64>,
    /// The second buffer of felzenszwalb's sort.
    pub(crate) spare: Vec<u64>,
    /// felzenszwalb's edge weights.
    pub(crate) weights: Vec<f64>,
    /// SLIC's distance of each pixel to its cluster.
    pub(crate) dist: Vec<f64>,
    /// SLIC's cluster of each pixel.
    pub(crate) nearest: Vec<i32>,
    /// SLIC's planes rounded to single precision, one after the other.
    pub(crate) narrow: Vec<f32>,
    /// SLIC's 8-bit levels of the image.
    pub(crate) levels: Vec<u8>,
    /// SLIC's connectivity: the label map framed by a border, the new labels, and the new
    /// labels of the bottom band when it runs in two.
    pub(crate) framed: Vec<i32>,
    pub(crate) framed_out: Vec<i32>,
    pub(crate) framed_band: Vec<i32>,
}

thread_local! {
    static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::default();
}

impl Buffers {
    /// The largest buffer kept after a call.
    pub(crate) const KEEP_BYTES: usize = 32 << 20;

    pub(crate) fn take() -> Self {
        BUFFERS.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }

    pub(crate) fn give_back(mut self) {
        self.planes.iter_mut().for_each(Self::trim);
        Self::trim(&mut self.edges);
        Self::trim(&mut self.spare);
        Self::trim(&mut self.weights);
        Self::trim(&mut self.dist);
        Self::trim(&mut self.nearest);
        Self::trim(&mut self.narrow);
        Self::trim(&mut self.levels);
        Self::trim(&mut self.framed);
        Self::trim(&mut self.framed_out);
        Self::trim(&mut self.framed_band);
        BUFFERS.with(|s| *s.borrow_mut() = self);
    }

    /// Frees `buffer` if it holds more than [`Buffers::KEEP_BYTES`]: what is kept between
    /// calls, here and in other per-thread buffers.
    pub(crate) fn trim<T>(buffer: &mut Vec<T>) {
        if buffer.capacity() * std::mem::size_of::<T>() > Self::KEEP_BYTES {
            *buffer = Vec::new();
        }
    }
}

/// Calls `f` with this thread's value in `kept`, which lives between calls (scratch space grown
/// and freed on every call costs as much as small work does), then `trim`s it; a fresh value
/// if this thread is already using it.
pub(crate) fn with_kept<T: Default + 'static, R>(
    kept: &'static std::thread::LocalKey<std::cell::RefCell<T>>,
    trim: impl FnOnce(&mut T),
    f: impl FnOnce(&mut T) -> R,
) -> R {
    kept.with(|kept| match kept.try_borrow_mut() {
        Ok(mut value) => {
            let result = f(&mut value);
            trim(&mut value);
            result
        }
        Err(_) => f(&mut T::default()),
    })
}

/// Runs `op` on a worker thread of rayon's pool (inline when already on one). A segmentation
/// starts dozens of parallel loops; each one started from outside the pool hands its work to
/// a sleeping worker and waits to be woken again, which on a small machine costs tens of
/// microseconds a loop, against nothing for loops started from a worker.
pub(crate) fn on_worker<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| op())
}

/// Gives `buffer` length `n`, clearing it only when its length changes: for buffers kept
/// between calls whose every value the caller overwrites.
pub(crate) fn resize_for_overwrite<T: Copy + Default>(buffer: &mut Vec<T>, n: usize) {
    if buffer.len() != n {
        buffer.clear();
        buffer.resize(n, T::default());
    }
}

/// `n` values of `buffer` (resized as [`resize_for_overwrite`] does, so stale values may
/// remain) starting on a 64-byte boundary, a cache line and one AVX-512 vector: vector loads
/// and stores of the slice, and of any part of it starting at a multiple of 64 bytes, never
/// straddle two cache lines (an allocation is only 16-byte aligned, so otherwise nearly all
/// do, each costing two accesses).
pub(crate) fn aligned_for_overwrite<T: Copy + Default>(buffer: &mut Vec<T>, n: usize) -> &mut [T] {
    let extra = 64 / std::mem::size_of::<T>().max(1);
    resize_for_overwrite(buffer, n + extra);
    let skip = buffer.as_ptr().align_offset(64).min(extra);
    &mut buffer[skip..skip + n]
}

/// Rejects empty images and non-finite pixels: the `Error::Data` every segmenter gives.
pub(crate) fn check_image(image: &ArrayView3<'_, f64>, method: &str) -> Result<()> {
    check_dims(image, method)?;
    // The common case in one vectorised pass; the slow search only to name the bad value.
    let all_finite = match image.as_slice() {
        Some(values) => values.par_chunks(1 << 15).all(|chunk| {
            xai_models::simd::vectorize(
                #[inline(always)]
                || all_finite(chunk),
            )
        }),
        None => false,
    };
    let bad = (!all_finite)
        .then(|| image.indexed_iter().find(|(_, v)| !v.is_finite()))
        .flatten();
    if let Some(((y, x, ch), v)) = bad {
        return Err(Error::Data(format!(
            "{method}: pixel (row {y}, column {x}) channel {ch} is {v}; \
             the image must hold finite values"
        )));
    }
    Ok(())
}

/// Whether every value is finite, in blocks without an early exit inside (so it vectorises);
/// call it inside [`xai_models::simd::vectorize`].
#[inline(always)]
pub(crate) fn all_finite(values: &[f64]) -> bool {
    values
        .chunks(64)
        .all(|c| c.iter().fold(true, |ok, v| ok & v.is_finite()))
}

/// Requires a non-empty image whose label map fits i32 indices (the part of [`check_image`]
/// that does not read the values).
pub(crate) fn check_dims(image: &ArrayView3<'_, f64>, method: &str) -> Result<()> {
    let (h, w, c) = image.dim();
    if h == 0 || w == 0 || c == 0 {
        return Err(Error::Data(format!(
            "{method}: the image is empty (height {h}, width {w}, {c} channels)"
        )));
    }
    if h.checked_mul(w).is_none_or(|n| n > i32::MAX as usize) {
        return Err(Error::Data(format!(
            "{method}: the image has too many pixels ({h}×{w}) for an i32 label map"
        )));
    }
    Ok(())
}

/// Requires exactly 3 channels (for the Lab conversion).
pub(crate) fn check_rgb(image: &ArrayView3<'_, f64>, method: &str) -> Result<()> {
    let (h, w, c) = image.dim();
    if c != 3 {
        return Err(Error::Shape {
            what: format!("{method}: the image (convert2lab needs RGB)"),
            actual: vec![h, w, c],
            expected: "(height, width, 3)".into(),
        });
    }
    Ok(())
}

/// Checks that `value` is finite and at least `min`.
pub(crate) fn check_at_least(name: &'static str, value: f64, min: f64) -> Result<()> {
    if !value.is_finite() || value < min {
        return Err(Error::param(
            name,
            format!("must be a finite number >= {min}, got {value}"),
        ));
    }
    Ok(())
}

/// Labels every pixel by the rank of its root among all roots, as NumPy's
/// `np.unique(roots, return_inverse=True)[1]` does: 0..K−1 in the roots' index order.
pub(crate) fn rank_roots(roots: &[usize], shape: (usize, usize)) -> Array2<i32> {
    let mut rank = vec![-1i32; roots.len()];
    for &r in roots {
        rank[r] = 0;
    }
    let mut next = 0i32;
    for v in rank.iter_mut() {
        if *v == 0 {
            *v = next;
            next += 1;
        }
    }
    let labels: Vec<i32> = roots.iter().map(|&r| rank[r]).collect();
    Array2::from_shape_vec(shape, labels).unwrap_or_else(|_| Array2::zeros(shape))
}
