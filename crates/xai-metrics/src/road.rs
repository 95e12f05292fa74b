//! ROAD, RemOve And Debias (Rong et al., 2022), as pytorch-grad-cam implements it: remove a
//! percentile of pixels by relevance, fill them in with the noisy linear imputer, and score
//! the model on the result.
//!
//! The imputer solves, for the unknown pixels `u`, `(Σ_valid w_n) x_u − Σ_unknown w_n x_n =
//! Σ_known w_n v_n` with weights 1/6 for the 4 edge neighbours and 1/12 for the 4 diagonal
//! ones (out-of-image neighbours dropped). The matrix is symmetric and diagonally dominant,
//! positive definite when some pixel is known, so it is solved by conjugate gradient in f64
//! (the reference uses a sparse direct solve); then `noise · N(0, 1)`, seeded, is added on
//! the imputed pixels only.

use candle_core::Tensor;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use xai_models::{Backbone, Target};

use crate::error::{Error, Result};
use crate::faithfulness::{check_map, image_data, score_batches};

/// Which pixels ROAD removes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RoadOrder {
    /// MoRF: at percentile `p`, the pixels with map value `>= percentile_p(map)` are imputed
    /// (about `100 − p` % of the most relevant). A faithful map makes the score drop.
    MostRelevantFirst,
    /// LeRF: at percentile `p`, the same rule on `1 − map`: about `100 − p` % of the least
    /// relevant pixels are imputed and the `p` % most relevant kept. A faithful map keeps the
    /// score.
    LeastRelevantFirst,
}

impl RoadOrder {
    /// `morf` or `lerf`.
    pub fn name(self) -> &'static str {
        match self {
            RoadOrder::MostRelevantFirst => "morf",
            RoadOrder::LeastRelevantFirst => "lerf",
        }
    }
}

/// NumPy's default (`"linear"`) percentile of `values`, `p` in `[0, 100]`, with NumPy's
/// interpolation formula (`b − (b − a)(1 − t)` once `t ≥ 0.5`).
///
/// ```
/// assert_eq!(xai_metrics::road::percentile(&[4.0, 1.0, 3.0, 2.0], 50.0), 2.5);
/// assert_eq!(xai_metrics::road::percentile(&[4.0, 1.0, 3.0, 2.0], 100.0), 4.0);
/// ```
pub fn percentile(values: &[f32], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v: Vec<f32> = values.to_vec();
    v.sort_by(f32::total_cmp);
    let pos = p / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor().max(0.0) as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (v[lo] as f64, v[hi] as f64);
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// The pixels ROAD keeps (`true`) at `percentile` (0–100) for `order`; the others are imputed.
/// The comparison is the reference's strict `value < threshold`, in f32.
///
/// ```
/// use ndarray::array;
/// use xai_metrics::road::{keep_mask, RoadOrder};
/// let map = array![[0.0f32, 0.25], [0.5, 1.0]];
/// let keep = keep_mask(map.view(), RoadOrder::MostRelevantFirst, 50.0)?;
/// assert_eq!(keep, array![[true, true], [false, false]]);
/// let keep = keep_mask(map.view(), RoadOrder::LeastRelevantFirst, 50.0)?;
/// assert_eq!(keep, array![[false, false], [true, true]]);
/// # Ok::<(), xai_metrics::Error>(())
/// ```
pub fn keep_mask(
    map: ArrayView2<'_, f32>,
    order: RoadOrder,
    percentile_p: f32,
) -> Result<Array2<bool>> {
    if !(0.0..=100.0).contains(&percentile_p) {
        return Err(Error::param(
            "percentile",
            format!("{percentile_p} is not a percentile; give 0 to 100 (the reference uses 10…90)"),
        ));
    }
    crate::error::check_finite("map", map.iter())?;
    let m = match order {
        RoadOrder::MostRelevantFirst => map.to_owned(),
        RoadOrder::LeastRelevantFirst => map.mapv(|v| 1.0 - v),
    };
    let values: Vec<f32> = m.iter().copied().collect();
    let t = percentile(&values, percentile_p as f64) as f32;
    Ok(m.mapv(|v| v < t))
}

/// What the imputer does when every pixel is to be imputed (no pixel anchors the system:
/// e.g. MoRF at 10 on a Grad-CAM map whose lowest 10 % are all exactly 0, so `map < 0` keeps
/// nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unanchored {
    /// Refuse with [`Error::NothingKnown`] (default).
    #[default]
    Error,
    /// Fill with 0 (then the noise): what the reference's direct solve returns there, since
    /// its right-hand side is zero; on a normalised input 0 is the normalisation mean.
    Zero,
}

/// The noisy linear imputer of ROAD.
///
/// ```
/// use ndarray::{Array2, Array3};
/// use xai_metrics::road::NoisyLinearImputer;
/// // A linear ramp is reproduced exactly in the interior: each pixel is its neighbours' mean.
/// let img = Array3::from_shape_fn((1, 5, 5), |(_, r, c)| (r + c) as f32);
/// let keep = Array2::from_shape_fn((5, 5), |(r, c)| !(1..4).contains(&r) || !(1..4).contains(&c));
/// let out = NoisyLinearImputer::without_noise().impute(img.view(), keep.view(), 0)?;
/// assert!((out[[0, 2, 2]] - 4.0).abs() < 1e-5);
/// // Nothing known: refused, not a NaN image.
/// assert!(NoisyLinearImputer::default().impute(img.view(), Array2::from_elem((5, 5), false).view(), 0).is_err());
/// # Ok::<(), xai_metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoisyLinearImputer {
    /// Standard deviation of the Gaussian noise added to imputed pixels. Default 0.01 (the
    /// reference); 0 for parity runs.
    pub noise: f32,
    /// Seed of the noise. Default 0.
    pub seed: u64,
    /// Relative residual at which conjugate gradient stops. Default 1e-10.
    pub tolerance: f64,
    /// Most conjugate-gradient iterations per channel. Default 20 000.
    pub max_iterations: usize,
    /// What to do when no pixel is known. Default [`Unanchored::Error`].
    pub unanchored: Unanchored,
}

impl Default for NoisyLinearImputer {
    fn default() -> Self {
        Self {
            noise: 0.01,
            seed: 0,
            tolerance: 1e-10,
            max_iterations: 20_000,
            unanchored: Unanchored::Error,
        }
    }
}

const NEIGHBOURS: [(isize, isize, f64); 8] = [
    (1, 1, 1.0 / 12.0),
    (0, 1, 1.0 / 6.0),
    (-1, 1, 1.0 / 12.0),
    (1, -1, 1.0 / 12.0),
    (0, -1, 1.0 / 6.0),
    (-1, -1, 1.0 / 12.0),
    (1, 0, 1.0 / 6.0),
    (-1, 0, 1.0 / 6.0),
];

impl NoisyLinearImputer {
    /// The reference's imputer with the noise off (what parity runs use).
    pub fn without_noise() -> Self {
        Self {
            noise: 0.0,
            ..Self::default()
        }
    }

    /// Sets what happens when no pixel is known.
    pub fn with_unanchored(mut self, unanchored: Unanchored) -> Self {
        self.unanchored = unanchored;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fills the pixels of `image` `(C, H, W)` where `keep` is false. `stream` picks an
    /// independent noise stream for this call (so several percentiles don't share noise).
    pub fn impute(
        &self,
        image: ArrayView3<'_, f32>,
        keep: ArrayView2<'_, bool>,
        stream: u64,
    ) -> Result<Array3<f32>> {
        let (c, h, w) = image.dim();
        if keep.dim() != (h, w) {
            return Err(Error::shape(
                "ROAD keep mask",
                &[keep.dim().0, keep.dim().1],
                format!("({h}, {w}), the image's size"),
            ));
        }
        if !self.noise.is_finite() || self.noise < 0.0 {
            return Err(Error::param(
                "noise",
                "give a finite standard deviation, 0 or more",
            ));
        }
        let hw = h * w;
        let keep: Vec<bool> = keep.iter().copied().collect();
        let unknown: Vec<usize> = (0..hw).filter(|&p| !keep[p]).collect();
        let mut out = image.to_owned();
        if unknown.is_empty() {
            return Ok(out);
        }
        let anchored = unknown.len() < hw;
        if !anchored && self.unanchored == Unanchored::Error {
            return Err(Error::NothingKnown { pixels: hw });
        }
        // The system lives on the image grid padded by one pixel: `x` is 0 on known and pad
        // pixels, so applying the matrix is one 8-neighbour stencil over the grid (no index
        // lists), and known neighbours only enter the right-hand side.
        let pw = w + 2;
        let grid = (h + 2) * pw;
        let at = |r: usize, c: usize| (r + 1) * pw + c + 1;
        let mut free = vec![0f64; grid];
        let mut diag = vec![1f64; grid];
        for &p in &unknown {
            let (r, col) = (p / w, p % w);
            let mut d = 0.0;
            for &(dr, dc, wt) in &NEIGHBOURS {
                let (rr, cc) = (r as isize + dr, col as isize + dc);
                if rr >= 0 && cc >= 0 && rr < h as isize && cc < w as isize {
                    d += wt;
                }
            }
            free[at(r, col)] = 1.0;
            diag[at(r, col)] = d;
        }
        let offsets: Vec<(isize, f64)> = NEIGHBOURS
            .iter()
            .map(|&(dr, dc, wt)| (dr * pw as isize + dc, wt))
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            self.seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        for ch in 0..c {
            if !anchored {
                out.index_axis_mut(ndarray::Axis(0), ch).fill(0.0);
                continue;
            }
            let plane = image.index_axis(ndarray::Axis(0), ch);
            let mut b = vec![0f64; grid];
            for &p in &unknown {
                let (r, col) = (p / w, p % w);
                let mut sum = 0.0;
                for &(dr, dc, wt) in &NEIGHBOURS {
                    let (rr, cc) = (r as isize + dr, col as isize + dc);
                    if rr >= 0 && cc >= 0 && rr < h as isize && cc < w as isize {
                        let q = rr as usize * w + cc as usize;
                        if keep[q] {
                            sum += wt * plane[[rr as usize, cc as usize]] as f64;
                        }
                    }
                }
                b[at(r, col)] = sum;
            }
            let x = conjugate_gradient(
                &diag,
                &free,
                &offsets,
                pw + 1..grid - pw - 1,
                &b,
                self.tolerance,
                self.max_iterations,
            )?;
            for &p in &unknown {
                out[[ch, p / w, p % w]] = x[at(p / w, p % w)] as f32;
            }
        }
        if self.noise > 0.0 {
            // The reference draws one noise value per channel and imputed pixel.
            for ch in 0..c {
                for &p in &unknown {
                    let z: f32 = StandardNormal.sample(&mut rng);
                    out[[ch, p / w, p % w]] += self.noise * z;
                }
            }
        }
        Ok(out)
    }
}

/// Jacobi-preconditioned conjugate gradient on `A x = b` over the padded grid, with
/// `(A x)ᵢ = freeᵢ·(diagᵢ·xᵢ − Σₙ wₙ·x_{i+offₙ})`: vectors are 0 wherever `free` is 0 (known
/// and pad pixels), `interior` is the range of grid indices whose neighbours are all inside.
fn conjugate_gradient(
    diag: &[f64],
    free: &[f64],
    offsets: &[(isize, f64)],
    interior: std::ops::Range<usize>,
    b: &[f64],
    tolerance: f64,
    max_iterations: usize,
) -> Result<Vec<f64>> {
    let n = b.len();
    let apply = |x: &[f64], out: &mut [f64]| {
        for i in interior.clone() {
            let mut s = diag[i] * x[i];
            for &(off, wt) in offsets {
                s -= wt * x[(i as isize + off) as usize];
            }
            out[i] = free[i] * s;
        }
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let b_norm = dot(b, b).sqrt();
    let mut x = vec![0f64; n];
    if b_norm == 0.0 {
        return Ok(x);
    }
    let mut r = b.to_vec();
    let mut z: Vec<f64> = r.iter().zip(diag).map(|(r, d)| r / d).collect();
    let mut p = z.clone();
    let mut ap = vec![0f64; n];
    let mut rz = dot(&r, &z);
    let mut residual = 1.0;
    for _ in 0..max_iterations {
        apply(&p, &mut ap);
        let alpha = rz / dot(&p, &ap);
        for i in 0..n {
            x[i] += alpha * p[i];
            r[i] -= alpha * ap[i];
        }
        residual = dot(&r, &r).sqrt() / b_norm;
        if residual <= tolerance {
            return Ok(x);
        }
        for i in 0..n {
            z[i] = r[i] / diag[i];
        }
        let rz_next = dot(&r, &z);
        let beta = rz_next / rz;
        rz = rz_next;
        for i in 0..n {
            p[i] = z[i] + beta * p[i];
        }
    }
    Err(Error::NotConverged {
        iterations: max_iterations,
        residual,
    })
}

/// ROAD settings: the imputer, the percentiles, the images per model call.
#[derive(Debug, Clone, PartialEq)]
pub struct Road {
    /// The imputer (default: the reference's, noise 0.01, seed 0).
    pub imputer: NoisyLinearImputer,
    /// The percentiles (default 10, 20, …, 90, the reference's averages).
    pub percentiles: Vec<f32>,
    /// Images per model call (default 32).
    pub batch_size: usize,
}

impl Default for Road {
    fn default() -> Self {
        Self {
            imputer: NoisyLinearImputer::default(),
            percentiles: (1..=9).map(|i| i as f32 * 10.0).collect(),
            batch_size: 32,
        }
    }
}

/// ROAD scores of one image for one order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoadScores {
    /// The order.
    pub order: RoadOrder,
    /// The percentiles.
    pub percentiles: Vec<f32>,
    /// `y`: the score on the image.
    pub before: f32,
    /// `y'` at each percentile.
    pub after: Vec<f32>,
}

impl RoadScores {
    /// `y' − y` at each percentile (the reference's `ROADMostRelevantFirst(p)` /
    /// `ROADLeastRelevantFirst(p)`).
    pub fn change(&self) -> Vec<f32> {
        self.after.iter().map(|a| a - self.before).collect()
    }

    /// The mean of [`change`](Self::change) over the percentiles (the reference's
    /// `ROAD…Average`).
    pub fn mean_change(&self) -> f32 {
        let c = self.change();
        c.iter().sum::<f32>() / c.len().max(1) as f32
    }
}

/// MoRF and LeRF together, and the reference's `ROADCombined`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoadCombined {
    /// Most relevant first.
    pub morf: RoadScores,
    /// Least relevant first.
    pub lerf: RoadScores,
}

impl RoadCombined {
    /// `(LeRF_avg − MoRF_avg) / 2`; higher is better.
    pub fn combined(&self) -> f32 {
        (self.lerf.mean_change() - self.morf.mean_change()) / 2.0
    }
}

impl Road {
    fn check(&self) -> Result<()> {
        if self.percentiles.is_empty() {
            return Err(Error::param("percentiles", "give at least one percentile"));
        }
        if self.batch_size == 0 {
            return Err(Error::param(
                "batch_size",
                "give at least one image per batch",
            ));
        }
        Ok(())
    }

    fn perturbed(
        &self,
        data: &[f32],
        shape: (usize, usize, usize),
        map: ArrayView2<'_, f32>,
        order: RoadOrder,
    ) -> Result<Vec<f32>> {
        let image = ArrayView3::from_shape(shape, data)
            .map_err(|_| Error::shape("image", &[data.len()], "C·H·W values"))?;
        // Percentiles are independent (each has its own noise stream): solve them in parallel.
        use rayon::prelude::*;
        let filled = self
            .percentiles
            .par_iter()
            .enumerate()
            .map(|(k, &p)| {
                let keep = keep_mask(map, order, p)?;
                let stream = (k as u64) << 1 | (order == RoadOrder::LeastRelevantFirst) as u64;
                self.imputer.impute(image, keep.view(), stream)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(filled.iter().flat_map(|f| f.iter().copied()).collect())
    }

    /// ROAD for one order on the preprocessed `image` `(3, H, W)` and its `map` `(H, W)` in
    /// `[0, 1]`: one imputation per percentile, the perturbed images scored in batches.
    pub fn scores(
        &self,
        model: &dyn Backbone,
        target: &dyn Target,
        image: &Tensor,
        map: ArrayView2<'_, f32>,
        order: RoadOrder,
    ) -> Result<RoadScores> {
        self.check()?;
        let (data, shape) = image_data(image)?;
        check_map(map, shape.1, shape.2)?;
        let mut all = data.clone();
        all.extend(self.perturbed(&data, shape, map, order)?);
        let s = score_batches(model, target, &all, shape, self.batch_size)?;
        Ok(RoadScores {
            order,
            percentiles: self.percentiles.clone(),
            before: s[0],
            after: s[1..].to_vec(),
        })
    }

    /// Both orders with one baseline score and shared batches (`2·P + 1` images).
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use xai_metrics::road::{Road, NoisyLinearImputer};
    /// let dev = Device::Cpu;
    /// let model = xai_models::testing::random_resnet(
    ///     xai_models::ResNetConfig::resnet18().with_width(4).with_classes(5), 0, &dev)?;
    /// let x = Tensor::randn(0f32, 1.0, (3, 24, 24), &dev)?;
    /// let map = ndarray::Array2::from_shape_fn((24, 24), |(r, c)| ((r * 24 + c) as f32 / 576.0));
    /// let road = Road { imputer: NoisyLinearImputer::default().with_seed(7), ..Road::default() };
    /// let r = road.combined(&model, &xai_models::ClassProbability(2), &x, map.view())?;
    /// assert_eq!(r.morf.after.len(), 9);
    /// assert!(r.combined().is_finite());
    /// # Ok::<(), xai_metrics::Error>(())
    /// ```
    pub fn combined(
        &self,
        model: &dyn Backbone,
        target: &dyn Target,
        image: &Tensor,
        map: ArrayView2<'_, f32>,
    ) -> Result<RoadCombined> {
        self.check()?;
        let (data, shape) = image_data(image)?;
        check_map(map, shape.1, shape.2)?;
        let mut all = data.clone();
        all.extend(self.perturbed(&data, shape, map, RoadOrder::MostRelevantFirst)?);
        all.extend(self.perturbed(&data, shape, map, RoadOrder::LeastRelevantFirst)?);
        let s = score_batches(model, target, &all, shape, self.batch_size)?;
        let p = self.percentiles.len();
        let scores = |order, range: std::ops::Range<usize>| RoadScores {
            order,
            percentiles: self.percentiles.clone(),
            before: s[0],
            after: s[range].to_vec(),
        };
        Ok(RoadCombined {
            morf: scores(RoadOrder::MostRelevantFirst, 1..1 + p),
            lerf: scores(RoadOrder::LeastRelevantFirst, 1 + p..1 + 2 * p),
        })
    }
}
