//! The LIME image explainer (Ribeiro et al., 2016, "Why should I trust you?").
//!
//! For one image and its superpixels: draw binary samples (which superpixels stay), build the
//! perturbed images (hidden superpixels take their mean colour or a fixed colour), score them
//! with the classifier, weight each sample by an exponential kernel of its cosine distance to
//! the unperturbed image, and fit a weighted ridge regression per explained label. The steps
//! and defaults are lime's `LimeImageExplainer.explain_instance`.

use image::RgbImage;
use ndarray::{Array1, Array2, Array4, ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::random::NumpyRandomState;
use crate::ridge::weighted_ridge;
use crate::selection::{select_features, FeatureSelection};
use crate::{Classifier, Error, Result};

/// What a hidden superpixel is replaced with.
///
/// Written and read as text: `"mean"`, or `"r,g,b"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HideColor {
    /// Each superpixel's own mean colour, per channel, truncated to 8 bits (lime's default,
    /// `hide_color=None`).
    #[default]
    Mean,
    /// One fixed colour (lime's `hide_color=v` broadcasts `v` to all channels; `Rgb([0,0,0])`
    /// is the `hide_color=0` of lime's tutorial).
    Rgb([u8; 3]),
}

impl std::str::FromStr for HideColor {
    type Err = Error;
    /// `mean`, one value `v` (all channels) or `r,g,b`, each 0–255.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("mean") {
            return Ok(Self::Mean);
        }
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let parse = |p: &str| {
            p.parse::<u8>().map_err(|_| {
                Error::param(
                    "hide_color",
                    format!("`{s}` is not `mean`, a value 0-255, or R,G,B with values 0-255"),
                )
            })
        };
        match parts.as_slice() {
            [v] => {
                let v = parse(v)?;
                Ok(Self::Rgb([v; 3]))
            }
            [r, g, b] => Ok(Self::Rgb([parse(r)?, parse(g)?, parse(b)?])),
            _ => Err(Error::param(
                "hide_color",
                format!("`{s}` is not `mean`, a value 0-255, or R,G,B"),
            )),
        }
    }
}

impl TryFrom<String> for HideColor {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<HideColor> for String {
    fn from(h: HideColor) -> Self {
        h.to_string()
    }
}

impl std::fmt::Display for HideColor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mean => f.write_str("mean"),
            Self::Rgb([r, g, b]) => write!(f, "{r},{g},{b}"),
        }
    }
}

/// Which labels to explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelChoice {
    /// The `k` labels with the highest score on the unperturbed image (lime: `top_labels=k`).
    Top(usize),
    /// These labels (lime: `labels=(...)`, `top_labels=None`).
    Labels(Vec<usize>),
}

/// The settings of a LIME run; `Default` gives lime's defaults with seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimeConfig {
    /// Perturbed samples, the unperturbed image included (lime: `num_samples`, 1000).
    pub num_samples: usize,
    /// Images per classifier call (lime: `batch_size`, 10). Results do not depend on it.
    pub batch_size: usize,
    /// Width of the exponential kernel on cosine distances (lime: `kernel_width`, 0.25).
    pub kernel_width: f64,
    /// What hidden superpixels become.
    pub hide_color: HideColor,
    /// Labels to explain (lime: `top_labels=5`).
    pub labels: LabelChoice,
    /// Features the surrogate may use (lime: `num_features`, 100000 = all).
    pub num_features: usize,
    /// How those features are chosen (lime: `feature_selection`, `auto`).
    pub feature_selection: FeatureSelection,
    /// Ridge penalty of the surrogate (lime: `Ridge(alpha=1)`).
    pub ridge_alpha: f64,
    /// Seed of the sample matrix. The draws are NumPy's `RandomState(seed)`, consumed as lime
    /// consumes them, so `LimeImageExplainer(random_state=seed)` perturbs the same superpixels.
    pub seed: u32,
}

impl Default for LimeConfig {
    fn default() -> Self {
        Self {
            num_samples: 1000,
            batch_size: 10,
            kernel_width: 0.25,
            hide_color: HideColor::Mean,
            labels: LabelChoice::Top(5),
            num_features: 100_000,
            feature_selection: FeatureSelection::Auto,
            ridge_alpha: 1.0,
            seed: 0,
        }
    }
}

impl LimeConfig {
    /// Checks every setting, naming the first that is not usable.
    pub fn validate(&self) -> Result<()> {
        if self.num_samples < 2 {
            return Err(Error::param(
                "num_samples",
                format!(
                    "need at least 2 samples (the image itself and one perturbation), got {}",
                    self.num_samples
                ),
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::param("batch_size", "must be at least 1"));
        }
        if !(self.kernel_width > 0.0 && self.kernel_width.is_finite()) {
            return Err(Error::param(
                "kernel_width",
                format!(
                    "must be a positive finite number, got {}",
                    self.kernel_width
                ),
            ));
        }
        if !(self.ridge_alpha >= 0.0 && self.ridge_alpha.is_finite()) {
            return Err(Error::param(
                "ridge_alpha",
                format!("must be finite and ≥ 0, got {}", self.ridge_alpha),
            ));
        }
        if self.num_features == 0 {
            return Err(Error::param("num_features", "must be at least 1"));
        }
        match &self.labels {
            LabelChoice::Top(0) => Err(Error::param("top_labels", "must be at least 1")),
            LabelChoice::Labels(l) if l.is_empty() => {
                Err(Error::param("labels", "give at least one label to explain"))
            }
            _ => Ok(()),
        }
    }
}

/// A superpixel label map with each superpixel's pixels listed once.
///
/// Feature `j` of LIME's sample matrix is the `j`-th smallest label value. lime itself hides
/// "the pixels whose label equals `j`", which is the same for maps numbered `0..n` (quickshift,
/// felzenszwalb) and differs for SLIC's default `start_label=1` (lime then never hides the
/// last superpixel); here every superpixel is a feature whatever the numbering.
#[derive(Debug, Clone, PartialEq)]
pub struct Superpixels {
    labels: Array2<i32>,
    values: Vec<i32>,
    pixels: Vec<Vec<u32>>,
}

impl Superpixels {
    /// Indexes a `(height, width)` label map.
    pub fn new(labels: Array2<i32>) -> Result<Self> {
        let (h, w) = labels.dim();
        if h == 0 || w == 0 {
            return Err(Error::Data("the superpixel map is empty".into()));
        }
        let mut values: Vec<i32> = labels.iter().copied().collect();
        values.sort_unstable();
        values.dedup();
        let mut pixels = vec![Vec::new(); values.len()];
        for (p, v) in labels.iter().enumerate() {
            if let Ok(j) = values.binary_search(v) {
                pixels[j].push(p as u32);
            }
        }
        Ok(Self {
            labels,
            values,
            pixels,
        })
    }

    /// The label map as given.
    pub fn labels(&self) -> &Array2<i32> {
        &self.labels
    }

    /// The number of superpixels (LIME's features).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no superpixels (never true for a built map).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The label value of feature `j`.
    pub fn label_of(&self, feature: usize) -> Option<i32> {
        self.values.get(feature).copied()
    }

    /// The label values in feature order.
    pub fn label_values(&self) -> &[i32] {
        &self.values
    }

    /// The flat (row-major) pixel indices of feature `j`.
    pub fn pixels(&self, feature: usize) -> &[u32] {
        self.pixels.get(feature).map_or(&[], Vec::as_slice)
    }

    /// The image every hidden superpixel takes its pixels from (lime's `fudged_image`).
    pub fn hidden_image(&self, image: &RgbImage, hide: HideColor) -> RgbImage {
        let mut out = image.clone();
        match hide {
            HideColor::Rgb(c) => {
                for px in out.pixels_mut() {
                    px.0 = c;
                }
            }
            HideColor::Mean => {
                let raw = image.as_raw();
                let buf: &mut [u8] = &mut out;
                for pixels in &self.pixels {
                    let mut sum = [0u64; 3];
                    for &p in pixels {
                        for c in 0..3 {
                            sum[c] += u64::from(raw[3 * p as usize + c]);
                        }
                    }
                    let n = pixels.len().max(1) as f64;
                    // The mean is exact in f64 and truncated on the way back to 8 bits, as
                    // NumPy does when it stores a float into a uint8 array.
                    let mean = sum.map(|s| (s as f64 / n) as u8);
                    for &p in pixels {
                        buf[3 * p as usize..3 * p as usize + 3].copy_from_slice(&mean);
                    }
                }
            }
        }
        out
    }

    /// Writes into `out` (`3·H·W` bytes) the image with the superpixels whose `keep` entry is
    /// false taken from `hidden`.
    pub fn perturb_into(
        &self,
        image: &[u8],
        hidden: &[u8],
        keep: ArrayView1<'_, f64>,
        out: &mut [u8],
    ) {
        out.copy_from_slice(image);
        for (j, &k) in keep.iter().enumerate() {
            if k == 0.0 {
                for &p in self.pixels(j) {
                    let i = 3 * p as usize;
                    out[i..i + 3].copy_from_slice(&hidden[i..i + 3]);
                }
            }
        }
    }
}

/// lime's sample matrix: `num_samples × n_features` of 0/1 drawn as
/// `RandomState(seed)`: first the segmentation seed `randint(0, 1000)` (returned), then
/// `randint(0, 2, num_samples·n_features)` row-major; row 0 is then set to all ones.
pub fn sample_matrix(seed: u32, num_samples: usize, n_features: usize) -> (Array2<f64>, u64) {
    let mut rng = NumpyRandomState::new(seed);
    let segmentation_seed = rng.randint(1000);
    let bits = rng.bits(num_samples * n_features);
    let mut data = Array2::from_shape_fn((num_samples, n_features), |(i, j)| {
        f64::from(u8::from(bits[i * n_features + j]))
    });
    if num_samples > 0 {
        data.row_mut(0).fill(1.0);
    }
    (data, segmentation_seed)
}

/// Cosine distance of every row to row 0, clipped to [0, 2] (scikit-learn's
/// `pairwise_distances(data, data[0:1], metric="cosine")`); an all-zero row is at distance 1.
pub fn cosine_distances_to_first(data: ArrayView2<'_, f64>) -> Array1<f64> {
    let unit = |row: ArrayView1<'_, f64>| -> Array1<f64> {
        let norm = row.dot(&row).sqrt();
        if norm == 0.0 {
            row.to_owned()
        } else {
            row.mapv(|v| v / norm)
        }
    };
    if data.nrows() == 0 {
        return Array1::zeros(0);
    }
    let first = unit(data.row(0));
    data.outer_iter()
        .map(|row| (1.0 - unit(row).dot(&first)).clamp(0.0, 2.0))
        .collect()
}

/// lime's default kernel: `sqrt(exp(−d²/width²))`.
pub fn exponential_kernel(distances: ArrayView1<'_, f64>, width: f64) -> Array1<f64> {
    distances.mapv(|d| (-(d * d) / (width * width)).exp().sqrt())
}

/// The surrogate model of one label: lime's `explain_instance_with_data` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalExplanation {
    /// The explained label (class index).
    pub label: usize,
    /// The surrogate's intercept.
    pub intercept: f64,
    /// `(feature, weight)` for the features used, largest |weight| first (ties keep the order
    /// the features were selected in).
    pub weights: Vec<(usize, f64)>,
    /// Weighted R² of the surrogate on the samples.
    pub score: f64,
    /// The surrogate's prediction for the unperturbed image.
    pub local_prediction: f64,
    /// The feature selection actually used (`auto` resolved).
    pub selection: FeatureSelection,
}

/// Fits the surrogate of one label from the samples: lime's `explain_instance_with_data`.
///
/// `data` is the binary sample matrix (row 0 the unperturbed instance), `scores` the
/// classifier's score of `label` per sample, `weights` the kernel weights.
pub fn explain_label(
    data: ArrayView2<'_, f64>,
    scores: ArrayView1<'_, f64>,
    weights: ArrayView1<'_, f64>,
    label: usize,
    num_features: usize,
    selection: FeatureSelection,
    ridge_alpha: f64,
) -> Result<LocalExplanation> {
    let (used, resolved) = select_features(data, scores, weights, num_features, selection)?;
    let x = data.select(ndarray::Axis(1), &used);
    let fit = weighted_ridge(x.view(), scores, weights, ridge_alpha)?;
    let score = fit.score(x.view(), scores, weights);
    let local_prediction = fit.predict_row(x.row(0));
    let mut pairs: Vec<(usize, f64)> = used.iter().copied().zip(fit.coef.iter().copied()).collect();
    pairs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    Ok(LocalExplanation {
        label,
        intercept: fit.intercept,
        weights: pairs,
        score,
        local_prediction,
        selection: resolved,
    })
}

/// The result of explaining one image.
#[derive(Debug, Clone)]
pub struct ImageExplanation {
    /// The explained image.
    pub image: RgbImage,
    /// Its superpixels.
    pub superpixels: Superpixels,
    /// The labels explained, in order (for `Top(k)`: highest score first).
    pub labels: Vec<usize>,
    /// One surrogate per explained label, in the order of `labels`.
    pub local: Vec<LocalExplanation>,
    /// The classifier's scores of the unperturbed image.
    pub base_scores: Vec<f64>,
    /// The binary sample matrix (row 0: every superpixel kept).
    pub data: Array2<f64>,
    /// The classifier's scores of every sample, `(num_samples, classes)`.
    pub scores: Array2<f64>,
    /// The kernel weight of every sample.
    pub sample_weights: Array1<f64>,
    /// The settings used.
    pub config: LimeConfig,
}

/// Options of [`ImageExplanation::image_and_mask`] (lime's `get_image_and_mask`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MaskOptions {
    /// Only superpixels that speak for the label.
    pub positive_only: bool,
    /// Only superpixels that speak against it.
    pub negative_only: bool,
    /// Black out everything not selected.
    pub hide_rest: bool,
    /// How many superpixels at most.
    pub num_features: usize,
    /// Skip superpixels whose |weight| is below this.
    pub min_weight: f64,
}

impl Default for MaskOptions {
    /// lime's defaults: positive only, 5 features, min weight 0, rest kept.
    fn default() -> Self {
        Self {
            positive_only: true,
            negative_only: false,
            hide_rest: false,
            num_features: 5,
            min_weight: 0.0,
        }
    }
}

impl ImageExplanation {
    /// The surrogate of `label`.
    pub fn local(&self, label: usize) -> Result<&LocalExplanation> {
        self.local
            .iter()
            .find(|l| l.label == label)
            .ok_or_else(|| Error::UnknownLabel {
                label,
                explained: self.labels.clone(),
            })
    }

    /// The label with the highest score on the unperturbed image among those explained.
    pub fn top_label(&self) -> usize {
        self.labels.first().copied().unwrap_or(0)
    }

    /// Each superpixel's weight for `label` (0 for features the surrogate did not use), in
    /// feature order.
    pub fn weights_by_feature(&self, label: usize) -> Result<Vec<f64>> {
        let local = self.local(label)?;
        let mut out = vec![0.0; self.superpixels.len()];
        for &(f, w) in &local.weights {
            if let Some(slot) = out.get_mut(f) {
                *slot = w;
            }
        }
        Ok(out)
    }

    /// The features `image_and_mask` selects, with the mask value each gets (1 or −1).
    pub fn selected_features(
        &self,
        label: usize,
        options: &MaskOptions,
    ) -> Result<Vec<(usize, i32)>> {
        if options.positive_only && options.negative_only {
            return Err(Error::param(
                "mask",
                "positive_only and negative_only cannot both be set; leave both off for both signs",
            ));
        }
        let local = self.local(label)?;
        let w = &local.weights;
        Ok(if options.positive_only {
            w.iter()
                .filter(|(_, v)| *v > 0.0 && *v > options.min_weight)
                .take(options.num_features)
                .map(|&(f, _)| (f, 1))
                .collect()
        } else if options.negative_only {
            w.iter()
                .filter(|(_, v)| *v < 0.0 && v.abs() > options.min_weight)
                .take(options.num_features)
                .map(|&(f, _)| (f, 1))
                .collect()
        } else {
            w.iter()
                .take(options.num_features)
                .filter(|(_, v)| v.abs() >= options.min_weight)
                .map(|&(f, v)| (f, if v < 0.0 { -1 } else { 1 }))
                .collect()
        })
    }

    /// lime's `get_image_and_mask`: the image with the selected superpixels (the rest kept or
    /// blacked out), and the `(height, width)` mask (1 selected, −1 selected against the label
    /// when neither `positive_only` nor `negative_only`, 0 elsewhere). With both signs, the
    /// superpixels for the label get their green channel, those against their red channel set
    /// to the image's maximum, as lime draws them.
    pub fn image_and_mask(
        &self,
        label: usize,
        options: &MaskOptions,
    ) -> Result<(RgbImage, Array2<i32>)> {
        let selected = self.selected_features(label, options)?;
        let (w, h) = self.image.dimensions();
        let mut mask = Array2::<i32>::zeros((h as usize, w as usize));
        let mut out = if options.hide_rest {
            RgbImage::new(w, h)
        } else {
            self.image.clone()
        };
        let both = !options.positive_only && !options.negative_only;
        let max = self.image.as_raw().iter().copied().max().unwrap_or(0);
        let src = self.image.as_raw();
        let mut mask_flat = mask.as_slice_mut();
        let buf: &mut [u8] = &mut out;
        for (f, value) in selected {
            for &p in self.superpixels.pixels(f) {
                let p = p as usize;
                if let Some(m) = mask_flat.as_deref_mut() {
                    m[p] = value;
                }
                buf[3 * p..3 * p + 3].copy_from_slice(&src[3 * p..3 * p + 3]);
                if both {
                    buf[3 * p + if value < 0 { 0 } else { 1 }] = max;
                }
            }
        }
        Ok((out, mask))
    }

    /// Only the mask of [`image_and_mask`](Self::image_and_mask).
    pub fn mask(&self, label: usize, options: &MaskOptions) -> Result<Array2<i32>> {
        Ok(self.image_and_mask(label, options)?.1)
    }
}

/// Perturbed samples and their scores: everything of a run but the surrogates.
#[derive(Debug, Clone)]
pub struct ScoredSamples {
    /// The explained image.
    pub image: RgbImage,
    /// Its superpixels.
    pub superpixels: Superpixels,
    /// The binary sample matrix (row 0: every superpixel kept).
    pub data: Array2<f64>,
    /// The classifier's scores per sample, `(num_samples, classes)`.
    pub scores: Array2<f64>,
}

/// Progress of a LIME run: samples scored so far and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Samples scored so far.
    pub done: usize,
    /// Samples in all.
    pub total: usize,
}

/// The LIME image explainer with validated settings.
///
/// ```
/// use ndarray::{Array2, ArrayView4};
/// use xai_lime::{LimeConfig, LimeImageExplainer, MaskOptions};
/// // A 4×4 image in four 2×2 superpixels; the "model" scores the brightness of the top-left one.
/// let image = image::RgbImage::from_pixel(4, 4, image::Rgb([200, 200, 200]));
/// let segments = Array2::from_shape_fn((4, 4), |(y, x)| (2 * (y / 2) + x / 2) as i32);
/// let mut model = |batch: ArrayView4<'_, u8>| -> xai_lime::Result<Array2<f64>> {
///     Ok(Array2::from_shape_fn((batch.dim().0, 2), |(i, k)| {
///         let v = f64::from(batch[[i, 0, 0, 0]]) / 255.0;
///         if k == 0 { v } else { 1.0 - v }
///     }))
/// };
/// let config = LimeConfig { num_samples: 200, hide_color: xai_lime::HideColor::Rgb([0, 0, 0]), ..Default::default() };
/// let explanation = LimeImageExplainer::new(config)?.explain(&image, segments, &mut model)?;
/// let mask = explanation.mask(0, &MaskOptions { num_features: 1, ..Default::default() })?;
/// assert_eq!(mask[[0, 0]], 1); // the top-left superpixel explains class 0
/// assert_eq!(mask[[3, 3]], 0);
/// # Ok::<(), xai_lime::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LimeImageExplainer {
    config: LimeConfig,
}

impl LimeImageExplainer {
    /// Checks `config` and builds the explainer.
    pub fn new(config: LimeConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The settings.
    pub fn config(&self) -> &LimeConfig {
        &self.config
    }

    /// Explains `classifier`'s scores on `image`, whose superpixels are `segments`.
    pub fn explain(
        &self,
        image: &RgbImage,
        segments: Array2<i32>,
        classifier: &mut dyn Classifier,
    ) -> Result<ImageExplanation> {
        self.explain_with_progress(image, segments, classifier, &mut |_| {})
    }

    /// [`explain`](Self::explain), calling `progress` after each classifier batch.
    pub fn explain_with_progress(
        &self,
        image: &RgbImage,
        segments: Array2<i32>,
        classifier: &mut dyn Classifier,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImageExplanation> {
        let samples = self.sample_and_score(image, segments, classifier, progress)?;
        self.fit(&samples, self.config.num_samples)
    }

    /// The expensive half of a run: builds the perturbed images of the seed's sample matrix
    /// and scores them. [`fit`](Self::fit) then fits the surrogates; a parameter search fits
    /// many kernel widths and feature counts on one set of scored samples.
    pub fn sample_and_score(
        &self,
        image: &RgbImage,
        segments: Array2<i32>,
        classifier: &mut dyn Classifier,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ScoredSamples> {
        let cfg = &self.config;
        let (w, h) = image.dimensions();
        if segments.dim() != (h as usize, w as usize) {
            return Err(Error::Shape {
                what: "superpixel map".into(),
                actual: segments.shape().to_vec(),
                expected: format!("({h}, {w}), the image's height and width"),
            });
        }
        let superpixels = Superpixels::new(segments)?;
        let hidden = superpixels.hidden_image(image, cfg.hide_color);
        let (data, _) = sample_matrix(cfg.seed, cfg.num_samples, superpixels.len());
        let scores =
            self.score_samples(image, &hidden, &superpixels, &data, classifier, progress)?;
        Ok(ScoredSamples {
            image: image.clone(),
            superpixels,
            data,
            scores,
        })
    }

    /// The cheap half of a run: the surrogates fitted on the first `num_samples` samples
    /// (the same as a run with that many samples, since the seed's draws are row-major).
    pub fn fit(&self, samples: &ScoredSamples, num_samples: usize) -> Result<ImageExplanation> {
        let cfg = &self.config;
        let n = num_samples.min(samples.data.nrows());
        if n < 2 {
            return Err(Error::param(
                "num_samples",
                format!("need at least 2 scored samples, have {n}"),
            ));
        }
        let rows = ndarray::Slice::from(..n);
        let data = samples.data.slice_axis(ndarray::Axis(0), rows).to_owned();
        let scores = samples.scores.slice_axis(ndarray::Axis(0), rows).to_owned();
        let distances = cosine_distances_to_first(data.view());
        let sample_weights = exponential_kernel(distances.view(), cfg.kernel_width);
        let base_scores = scores.row(0).to_vec();
        let classes = base_scores.len();
        let labels = match &cfg.labels {
            LabelChoice::Top(k) => {
                // Stable ascending order, the last k reversed: ties go to the higher index.
                let mut order: Vec<usize> = (0..classes).collect();
                order.sort_by(|&a, &b| base_scores[a].total_cmp(&base_scores[b]));
                order.iter().rev().take(*k).copied().collect()
            }
            LabelChoice::Labels(l) => {
                if let Some(&bad) = l.iter().find(|&&l| l >= classes) {
                    return Err(Error::param(
                        "labels",
                        format!(
                            "label {bad} is out of range: the classifier returns {classes} scores"
                        ),
                    ));
                }
                l.clone()
            }
        };
        let local = labels
            .iter()
            .map(|&label| {
                explain_label(
                    data.view(),
                    scores.column(label),
                    sample_weights.view(),
                    label,
                    cfg.num_features,
                    cfg.feature_selection,
                    cfg.ridge_alpha,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ImageExplanation {
            image: samples.image.clone(),
            superpixels: samples.superpixels.clone(),
            labels,
            local,
            base_scores,
            data,
            scores,
            sample_weights,
            config: LimeConfig {
                num_samples: n,
                ..cfg.clone()
            },
        })
    }

    fn score_samples(
        &self,
        image: &RgbImage,
        hidden: &RgbImage,
        superpixels: &Superpixels,
        data: &Array2<f64>,
        classifier: &mut dyn Classifier,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Array2<f64>> {
        let (w, h) = image.dimensions();
        let (h, w) = (h as usize, w as usize);
        let n = data.nrows();
        let per_image = 3 * h * w;
        let mut scores: Option<Array2<f64>> = None;
        let mut batch = Array4::<u8>::zeros((self.config.batch_size.min(n), h, w, 3));
        let mut start = 0;
        while start < n {
            let len = self.config.batch_size.min(n - start);
            if batch.dim().0 != len {
                batch = Array4::zeros((len, h, w, 3));
            }
            let flat = batch
                .as_slice_mut()
                .ok_or_else(|| Error::Data("internal: batch buffer is not contiguous".into()))?;
            for (i, out) in flat.chunks_exact_mut(per_image).enumerate() {
                superpixels.perturb_into(image.as_raw(), hidden.as_raw(), data.row(start + i), out);
            }
            let s = classifier.classify(batch.view())?;
            if s.nrows() != len || s.ncols() == 0 {
                return Err(Error::Classifier(format!(
                    "returned shape {:?} for a batch of {len} images; expected ({len}, classes)",
                    s.dim()
                )));
            }
            if s.iter().any(|v| !v.is_finite()) {
                return Err(Error::Classifier(format!(
                    "returned NaN or infinite scores for samples {start}..{}",
                    start + len
                )));
            }
            let all = scores.get_or_insert_with(|| Array2::zeros((n, s.ncols())));
            if all.ncols() != s.ncols() {
                return Err(Error::Classifier(format!(
                    "returned {} classes for one batch and {} for another",
                    all.ncols(),
                    s.ncols()
                )));
            }
            all.slice_axis_mut(ndarray::Axis(0), ndarray::Slice::from(start..start + len))
                .assign(&s);
            start += len;
            progress(Progress {
                done: start,
                total: n,
            });
        }
        scores.ok_or_else(|| Error::Data("no samples were scored".into()))
    }
}
