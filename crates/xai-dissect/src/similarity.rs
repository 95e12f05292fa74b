//! CLIP-Dissect's similarity functions: from the concept-similarity matrix `S` (N images ×
//! C concepts) and the pooled activations `A` (N images × U units) of one layer to a score
//! matrix (U × C); each unit's label is the argmax of its row.
//!
//! The five functions follow CLIP-Dissect's `similarity.py` (Oikarinen & Weng, 2023, §3.2 and
//! appendix A.3), with its defaults:
//!
//! - [`SoftWpmi`] (the default): `L[u,c] = Σ_j ln(1 + p_j (P[idx_u[j], c] − 1) + min_prob)`
//!   over the `top_k` images that activate unit `u` most, `P = softmax(a·S)` over concepts,
//!   minus `lam` times a per-layer prior `logsumexp_u L[u,c] − ln U`.
//! - [`Wpmi`]: the same with `L[u,c] = Σ_j ln(P[idx_u[j], c] + min_prob)`.
//! - `Cos`: cosine of each unit's activation column with each concept's column.
//! - `Cos3`: the same on centred, cubed columns (norms clipped below at `min_norm`).
//! - [`RankReorder`]: how well each concept's ranking of the top images reproduces their
//!   activations.
//!
//! Two choices where the reference leaves the result unspecified:
//! - Ties among the activations (ReLU zeros) are broken by image index, ascending: the top-k
//!   order is a *stable* descending sort (`torch.topk` gives no order among equal values).
//! - `rank_reorder` divides by a baseline built from five random permutations; ours are drawn
//!   from a seeded generator ([`RankReorder::seed`]). The baseline is one positive scalar per
//!   unit, so it scales a unit's whole row and never changes its argmax.
//!
//! `top_k` larger than the number of images is clamped to it (the reference raises).
//!
//! Only the image rows some unit needs are exponentiated; their exponentials are kept (up to
//! 512 MiB; beyond that they are recomputed per chunk of concepts, so `softmax(a·S)` is never
//! held whole for large probe sets); the products run chunk by chunk over concepts, units in
//! parallel (rayon). The element-wise loops run through [`xai_models::simd::vectorize`]
//! (AVX-512 or AVX2 where the CPU has them), which changes their speed, not their results.

use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;

use crate::{Error, Result};

/// Settings of soft-WPMI (CLIP-Dissect's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftWpmi {
    /// Images per unit (default 100).
    pub top_k: usize,
    /// Softmax temperature on `S` (default 10).
    pub a: f32,
    /// Weight of the prior (default 1).
    pub lam: f32,
    /// Added inside the logarithm (default 1e-7).
    pub min_prob: f32,
    /// Weight of the most activating image (default 0.998).
    pub p_start: f32,
    /// The weights fall linearly towards this (default 0.97; the last is `0.97028` for 100).
    pub p_end: f32,
}

impl Default for SoftWpmi {
    fn default() -> Self {
        Self {
            top_k: 100,
            a: 10.0,
            lam: 1.0,
            min_prob: 1e-7,
            p_start: 0.998,
            p_end: 0.97,
        }
    }
}

/// Settings of WPMI (CLIP-Dissect's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wpmi {
    /// Images per unit (default 28).
    pub top_k: usize,
    /// Softmax temperature on `S` (default 2).
    pub a: f32,
    /// Weight of the prior (default 0.6).
    pub lam: f32,
    /// Added inside the logarithm (default 1e-7).
    pub min_prob: f32,
}

impl Default for Wpmi {
    fn default() -> Self {
        Self {
            top_k: 28,
            a: 2.0,
            lam: 0.6,
            min_prob: 1e-7,
        }
    }
}

/// Settings of rank reorder (CLIP-Dissect's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankReorder {
    /// Exponent of the errors (default 3).
    pub p: f32,
    /// Share of the images used per unit: `floor(top_fraction · N)` (default 0.05).
    pub top_fraction: f32,
    /// Exponent of the mean similarity the error is divided by (default 0.5).
    pub scale_p: f32,
    /// Seed of the five baseline permutations (default 0).
    pub seed: u64,
}

impl Default for RankReorder {
    fn default() -> Self {
        Self {
            p: 3.0,
            top_fraction: 0.05,
            scale_p: 0.5,
            seed: 0,
        }
    }
}

/// A similarity function and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Similarity {
    /// Soft weighted pointwise mutual information (the default).
    SoftWpmi(SoftWpmi),
    /// Weighted pointwise mutual information.
    Wpmi(Wpmi),
    /// Cosine similarity of the columns.
    Cos,
    /// Cosine similarity of centred, cubed columns.
    Cos3 {
        /// Norms below this are clipped to it (default 1e-3).
        min_norm: f32,
    },
    /// Rank reorder.
    RankReorder(RankReorder),
}

impl Default for Similarity {
    fn default() -> Self {
        Self::SoftWpmi(SoftWpmi::default())
    }
}

/// The names [`Similarity::from_name`] accepts.
pub const SIMILARITY_NAMES: [&str; 5] = ["soft-wpmi", "wpmi", "cos", "cos3", "rank-reorder"];

impl Similarity {
    /// The function of this name, with the reference's defaults. Also accepts the reference's
    /// own names (`soft_wpmi`, `cos_similarity`, `cos_similarity_cubed`, `rank_reorder`).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(
            match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "soft-wpmi" => Self::SoftWpmi(SoftWpmi::default()),
                "wpmi" => Self::Wpmi(Wpmi::default()),
                "cos" | "cos-similarity" => Self::Cos,
                "cos3" | "cos-similarity-cubed" => Self::Cos3 { min_norm: 1e-3 },
                "rank-reorder" => Self::RankReorder(RankReorder::default()),
                _ => {
                    return Err(Error::Parameter {
                        name: "similarity",
                        reason: format!(
                            "unknown similarity `{name}`; use one of {}",
                            SIMILARITY_NAMES.join(", ")
                        ),
                    })
                }
            },
        )
    }

    /// The name, as [`from_name`](Self::from_name) takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SoftWpmi(_) => "soft-wpmi",
            Self::Wpmi(_) => "wpmi",
            Self::Cos => "cos",
            Self::Cos3 { .. } => "cos3",
            Self::RankReorder(_) => "rank-reorder",
        }
    }

    /// Sets the images per unit of the WPMI functions (others have none): `--top-k`.
    pub fn with_top_k(self, top_k: usize) -> Self {
        match self {
            Self::SoftWpmi(p) => Self::SoftWpmi(SoftWpmi { top_k, ..p }),
            Self::Wpmi(p) => Self::Wpmi(Wpmi { top_k, ..p }),
            other => other,
        }
    }

    /// The score matrix (U × C) of the concepts `S` (N × C) for the activations `A` (N × U)
    /// of one layer.
    ///
    /// ```
    /// use ndarray::array;
    /// use xai_dissect::similarity::Similarity;
    /// // two images, two concepts, one unit that fires on image 1, which shows concept 1
    /// let s = array![[0.3f32, 0.1], [0.1, 0.3]];
    /// let a = array![[0.0f32], [2.0]];
    /// let scores = Similarity::Cos.compute(s.view(), a.view())?;
    /// assert!(scores[[0, 1]] > scores[[0, 0]]);
    /// # Ok::<(), xai_dissect::Error>(())
    /// ```
    pub fn compute(&self, s: ArrayView2<'_, f32>, a: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        check_inputs(s, a)?;
        match *self {
            Self::SoftWpmi(p) => Ok(pmi(
                s,
                a,
                PmiKind::Soft {
                    p_start: p.p_start,
                    p_end: p.p_end,
                },
                p.top_k,
                p.a,
                p.lam,
                p.min_prob,
                STORED_EXP_LIMIT,
            )),
            Self::Wpmi(p) => Ok(pmi(
                s,
                a,
                PmiKind::Plain,
                p.top_k,
                p.a,
                p.lam,
                p.min_prob,
                STORED_EXP_LIMIT,
            )),
            Self::Cos => cos(s, a),
            Self::Cos3 { min_norm } => cos3(s, a, min_norm),
            Self::RankReorder(p) => {
                let (raw, base) = rank_reorder_parts(s, a, &p)?;
                let mut out = raw;
                for (mut row, b) in out.axis_iter_mut(Axis(0)).zip(base) {
                    row.mapv_inplace(|v| v / b);
                }
                Ok(out)
            }
        }
    }
}

fn check_inputs(s: ArrayView2<'_, f32>, a: ArrayView2<'_, f32>) -> Result<()> {
    if s.nrows() != a.nrows() {
        return Err(Error::Shape {
            what: "the activations".into(),
            actual: a.shape().to_vec(),
            expected: format!(
                "one row per probe image ({} images in the concept similarities)",
                s.nrows()
            ),
        });
    }
    if s.nrows() == 0 || s.ncols() == 0 || a.ncols() == 0 {
        return Err(Error::Parameter {
            name: "inputs",
            reason: format!(
                "need at least one image, concept and unit (S is {:?}, A is {:?})",
                s.shape(),
                a.shape()
            ),
        });
    }
    // A branch-free scan first (it vectorises); the position is looked up only on failure.
    let all_finite = |x: ArrayView2<'_, f32>| match x.as_slice() {
        Some(v) => v
            .chunks(1024)
            .all(|c| !c.iter().fold(false, |bad, x| bad | !x.is_finite())),
        None => x.iter().all(|v| v.is_finite()),
    };
    if all_finite(s) && all_finite(a) {
        return Ok(());
    }
    if let Some(((i, c), _)) = s.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite(format!(
            "concept similarity of image {i}, concept {c} is not finite"
        )));
    }
    if let Some(((i, u), _)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite(format!(
            "activation of image {i}, unit {u} is not finite"
        )));
    }
    Ok(())
}

/// For each unit, the images in descending order of its activation, ties by index (stable),
/// cut to the first `k`.
pub fn top_images(a: ArrayView2<'_, f32>, k: usize) -> Vec<Vec<usize>> {
    let n = a.nrows();
    let k = k.min(n);
    (0..a.ncols())
        .into_par_iter()
        .map(|u| {
            let col = a.column(u);
            let mut idx: Vec<usize> = (0..n).collect();
            let cmp = |x: &usize, y: &usize| col[*y].total_cmp(&col[*x]).then(x.cmp(y));
            if k < n && k > 0 {
                idx.select_nth_unstable_by(k - 1, cmp);
                idx.truncate(k);
            }
            idx.sort_by(cmp);
            idx.truncate(k);
            idx
        })
        .collect()
}

#[derive(Clone, Copy)]
enum PmiKind {
    Soft { p_start: f32, p_end: f32 },
    Plain,
}

/// Concepts per chunk: big enough for long vector loops, small enough that the exponentiated
/// rows of a chunk stay in cache-friendly tens of megabytes.
const CONCEPT_CHUNK: usize = 512;
/// The most exponentials (rows some unit reads × concepts) stored rather than evaluated twice:
/// 512 MiB.
const STORED_EXP_LIMIT: usize = 1 << 27;
/// Rows per group of the stored exponentials: each group holds its rows chunk by chunk, so the
/// rows of one concept chunk lie in pieces of `ROW_GROUP · CONCEPT_CHUNK` values.
const ROW_GROUP: usize = 64;
/// How many factors, each at least `min_factor`, can be multiplied in f64 before one
/// logarithm without leaving the normal range (products stay above e⁻⁷⁰⁰ ≈ 10⁻³⁰⁴): fewer
/// logarithms, the costly part, with the same sum of logs up to f64 rounding.
fn log_group(min_factor: f64) -> usize {
    if min_factor >= 1.0 {
        return 256;
    }
    let per = -min_factor.max(1e-300).ln();
    ((700.0 / per).floor() as usize).clamp(1, 256)
}

/// `eˣ` in f32 (relative error below 3·10⁻⁷ for x ≥ −87, 0 below), written with plain
/// arithmetic so that the softmax loops vectorise: `x = n·ln 2 + r` with `n` rounded by the 1.5·2²³ trick,
/// Cody–Waite reduction, a degree-6 polynomial for `eʳ` on `|r| ≤ ln 2 / 2`, and `2ⁿ` built
/// from its bits.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    let underflow = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    let k = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let y = p * f32::from_bits(((k + 127) << 23) as u32);
    // A select, not a branch, so that loops over it vectorise.
    if underflow {
        0.0
    } else {
        y
    }
}

// The reference's parameters, plus the storage limit that tests lower to reach both paths.
#[allow(clippy::too_many_arguments)]
fn pmi(
    s: ArrayView2<'_, f32>,
    a: ArrayView2<'_, f32>,
    kind: PmiKind,
    top_k: usize,
    temp: f32,
    lam: f32,
    min_prob: f32,
    stored_exp_limit: usize,
) -> Array2<f32> {
    let (n, c_total) = s.dim();
    let units = a.ncols();
    let k = top_k.clamp(1, n);
    let tops = top_images(a, k);
    // Only the rows some unit looks at are ever exponentiated.
    let mut used = vec![usize::MAX; n];
    let mut rows = Vec::new();
    for t in &tops {
        for &i in t {
            if used[i] == usize::MAX {
                used[i] = rows.len();
                rows.push(i);
            }
        }
    }
    let positions: Vec<Vec<usize>> = tops
        .iter()
        .map(|t| t.iter().map(|&i| used[i]).collect())
        .collect();
    // Row maxima and softmax denominators over all concepts.
    // Rows as slices: ndarray's element iterators (and their `skip`) are far slower here.
    let s = s.as_standard_layout();
    let flat = s.as_slice().unwrap_or(&[]);
    let row_of = |i: usize| &flat[i * c_total..(i + 1) * c_total];
    // With room for them, the exponentials are stored by the pass that sums them (grouped so
    // that each concept chunk's rows stay together) and reused with 1/denominator folded into
    // each factor's slope, instead of being evaluated again per chunk.
    let store = rows.len().saturating_mul(c_total) <= stored_exp_limit;
    let mut stored = if store {
        vec![0f32; rows.len() * c_total]
    } else {
        Vec::new()
    };
    let norm: Vec<(f32, f64)> = if store {
        stored
            .par_chunks_mut((ROW_GROUP * c_total).max(1))
            .zip(rows.par_chunks(ROW_GROUP))
            .flat_map_iter(|(buf, group)| {
                let in_group = group.len();
                group
                    .iter()
                    .enumerate()
                    .map(|(ri, &i)| {
                        let row = row_of(i);
                        let buf = &mut *buf;
                        xai_models::simd::vectorize(
                            #[inline(always)]
                            move || {
                                let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(temp * v));
                                let mut parts = [0f64; 8];
                                for c0 in (0..c_total).step_by(CONCEPT_CHUNK) {
                                    let w = CONCEPT_CHUNK.min(c_total - c0);
                                    let at = c0 * in_group + ri * w;
                                    let dst = &mut buf[at..at + w];
                                    for (o, &v) in dst.iter_mut().zip(&row[c0..c0 + w]) {
                                        *o = exp_f32(temp * v - m);
                                    }
                                    for chunk in dst.chunks(8) {
                                        for (p, &e) in parts.iter_mut().zip(chunk) {
                                            *p += e as f64;
                                        }
                                    }
                                }
                                (m, parts.iter().sum())
                            },
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        rows.par_iter()
            .map(|&i| {
                let row = row_of(i);
                xai_models::simd::vectorize(
                    #[inline(always)]
                    || {
                        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(temp * v));
                        // Eight partial sums, so the additions vectorise.
                        let mut parts = [0f64; 8];
                        for chunk in row.chunks(8) {
                            for (p, &v) in parts.iter_mut().zip(chunk) {
                                *p += exp_f32(temp * v - m) as f64;
                            }
                        }
                        (m, parts.iter().sum())
                    },
                )
            })
            .collect()
    };
    let inv: Vec<f32> = norm.iter().map(|&(_, sum)| (1.0 / sum) as f32).collect();
    let weights: Vec<f32> = match kind {
        PmiKind::Soft { p_start, p_end } => {
            let step = p_start - p_end;
            (0..k)
                .map(|j| p_start - (j as f32 / k as f32) * step)
                .collect()
        }
        PmiKind::Plain => vec![1.0; k],
    };
    // Each factor is `floor_j + slope_j · P`, with `floor_j = 1 − p_j + min_prob` formed in f64:
    // in f32 the reference's `1 + p_j (P − 1)` loses ~3e-5 of its relative precision where
    // P ≈ 0 (a factor of ≈ 0.002), this form keeps it to one rounding.
    let (slopes, floors): (Vec<f32>, Vec<f64>) = match kind {
        PmiKind::Soft { .. } => weights
            .iter()
            .map(|&pj| (pj, (1.0 - pj as f64) + min_prob as f64))
            .unzip(),
        PmiKind::Plain => (vec![1.0; k], vec![min_prob as f64; k]),
    };
    let min_factor = floors.iter().copied().fold(f64::INFINITY, f64::min);
    let products = FactorProducts::for_min_factor(min_factor);
    let floors32: Vec<f32> = floors.iter().map(|&f| f as f32).collect();
    let mut l = Array2::<f64>::zeros((units, c_total));
    let mut prob = if store {
        Vec::new()
    } else {
        vec![0f32; rows.len() * CONCEPT_CHUNK]
    };
    for c0 in (0..c_total).step_by(CONCEPT_CHUNK) {
        let w = CONCEPT_CHUNK.min(c_total - c0);
        if !store {
            prob[..rows.len() * w]
                .par_chunks_mut(w)
                .zip(rows.par_iter().zip(norm.par_iter()))
                .for_each(|(out, (&i, &(m, sum)))| {
                    let row = &row_of(i)[c0..c0 + w];
                    let inv = (1.0 / sum) as f32;
                    xai_models::simd::vectorize(
                        #[inline(always)]
                        || {
                            for (o, &v) in out.iter_mut().zip(row) {
                                *o = exp_f32(temp * v - m) * inv;
                            }
                        },
                    )
                });
        }
        let prob = &prob[..if store { 0 } else { rows.len() * w }];
        let block: Vec<Vec<f64>> = positions
            .par_iter()
            .map(|pos| match (products, store) {
                (FactorProducts::F32 { group }, true) => sum_log_factors_f32(
                    stored_rows_at(&stored, &inv, pos, (c_total, c0, w)),
                    &floors32,
                    &slopes,
                    group,
                    w,
                ),
                (FactorProducts::F32 { group }, false) => {
                    sum_log_factors_f32(rows_at(prob, pos, w), &floors32, &slopes, group, w)
                }
                (FactorProducts::F64 { group }, true) => sum_log_factors_f64(
                    stored_rows_at(&stored, &inv, pos, (c_total, c0, w)),
                    &floors,
                    &slopes,
                    group,
                    w,
                ),
                (FactorProducts::F64 { group }, false) => {
                    sum_log_factors_f64(rows_at(prob, pos, w), &floors, &slopes, group, w)
                }
            })
            .collect();
        for (u, vals) in block.iter().enumerate() {
            for (dst, v) in l.row_mut(u).iter_mut().skip(c0).zip(vals.iter()) {
                *dst = *v;
            }
        }
    }
    // The prior of each concept over the units of this layer: a log-sum-exp down each column,
    // accumulated row by row (memory order) in column blocks run in parallel.
    let ln_u = (units as f64).ln();
    let l_flat = l.as_slice().unwrap_or(&[]);
    let mut prior = vec![0f64; c_total];
    prior
        .par_chunks_mut(CONCEPT_CHUNK)
        .enumerate()
        .for_each(|(b, out)| {
            let c0 = b * CONCEPT_CHUNK;
            let w = out.len();
            xai_models::simd::vectorize(
                #[inline(always)]
                || {
                    let mut max = vec![f64::NEG_INFINITY; w];
                    for u in 0..units {
                        let row = &l_flat[u * c_total + c0..u * c_total + c0 + w];
                        for (m, &v) in max.iter_mut().zip(row) {
                            *m = m.max(v);
                        }
                    }
                    let mut sum = vec![0f64; w];
                    for u in 0..units {
                        let row = &l_flat[u * c_total + c0..u * c_total + c0 + w];
                        for ((s, &v), &m) in sum.iter_mut().zip(row).zip(&max) {
                            // exp of a value ≤ 0 whose relative error (3e-7) moves the prior by < 1e-6.
                            *s += exp_f32((v - m) as f32) as f64;
                        }
                    }
                    for ((o, m), s) in out.iter_mut().zip(max).zip(sum) {
                        *o = m + s.ln() - ln_u;
                    }
                },
            )
        });
    let lam = lam as f64;
    let mut out = vec![0f32; units * c_total];
    out.par_chunks_mut(c_total.max(1))
        .zip(l_flat.par_chunks(c_total.max(1)))
        .for_each(|(o, row)| {
            for ((o, &v), &p) in o.iter_mut().zip(row).zip(&prior) {
                *o = (v - lam * p) as f32;
            }
        });
    Array2::from_shape_vec((units, c_total), out)
        .unwrap_or_else(|_| Array2::zeros((units, c_total)))
}

/// The rows `pos` of a chunk of probabilities `w` wide.
fn rows_at<'a>(
    prob: &'a [f32],
    pos: &'a [usize],
    w: usize,
) -> impl Iterator<Item = (&'a [f32], f32)> {
    pos.iter().map(move |&r| (&prob[r * w..(r + 1) * w], 1.0))
}

/// The rows `pos` of the stored exponentials of the concept chunk at `c0` (`w` wide), each with
/// its 1/denominator: [`ROW_GROUP`] rows at a time, chunk by chunk (see `pmi`).
fn stored_rows_at<'a>(
    stored: &'a [f32],
    inv: &'a [f32],
    pos: &'a [usize],
    (c_total, c0, w): (usize, usize, usize),
) -> impl Iterator<Item = (&'a [f32], f32)> {
    let n_rows = inv.len();
    pos.iter().map(move |&r| {
        let g = r / ROW_GROUP;
        let in_group = ROW_GROUP.min(n_rows - g * ROW_GROUP);
        let at = g * ROW_GROUP * c_total + c0 * in_group + (r - g * ROW_GROUP) * w;
        (&stored[at..at + w], inv[r])
    })
}

/// How the products of a unit's factors are formed before their logarithm.
#[derive(Debug, Clone, Copy)]
enum FactorProducts {
    /// In f32, renormalised to [1, 2) every `group` factors with the exponent kept apart: four
    /// lanes per SSE2 vector (eight with AVX2, sixteen with AVX-512) and one logarithm per
    /// concept at the end.
    F32 { group: usize },
    /// In f64, one logarithm per `group` factors (for floors so small that f32 would underflow
    /// within two factors, e.g. `min_prob = 0`).
    F64 { group: usize },
}

impl FactorProducts {
    fn for_min_factor(min_factor: f64) -> Self {
        // Starting in [1, 2), `group` factors ≥ min_factor keep the product ≥ 2⁻¹²⁵ (normal).
        let group = if min_factor > 0.0 {
            (86.0 / -min_factor.min(0.5).ln()).floor() as usize
        } else {
            0
        };
        if group >= 2 {
            Self::F32 {
                group: group.min(64),
            }
        } else {
            Self::F64 {
                group: log_group(min_factor),
            }
        }
    }
}

/// `Σ_j ln(floor_j + slope_j · scale_j · E_j[c])` for each concept `c` of the chunk (`E_j` a row of
/// probabilities, or of exponentials with `scale_j` their 1/denominator), the product in f32
/// with the binary exponent split off every `group` factors.
fn sum_log_factors_f32<'a>(
    rows: impl Iterator<Item = (&'a [f32], f32)>,
    floors: &[f32],
    slopes: &[f32],
    group: usize,
    w: usize,
) -> Vec<f64> {
    xai_models::simd::vectorize(
        #[inline(always)]
        move || {
            let mut acc = vec![1f32; w];
            let mut exponent = vec![0i32; w];
            let mut in_group = 0;
            for (((p, scale), &floor), &slope) in rows.zip(floors).zip(slopes) {
                let slope = slope * scale;
                for (x, &v) in acc.iter_mut().zip(p) {
                    *x *= floor + slope * v;
                }
                in_group += 1;
                if in_group == group {
                    renormalise(&mut acc, &mut exponent);
                    in_group = 0;
                }
            }
            renormalise(&mut acc, &mut exponent);
            acc.iter()
                .zip(&exponent)
                .map(|(&x, &e)| (x as f64).ln() + e as f64 * std::f64::consts::LN_2)
                .collect()
        },
    )
}

/// Moves each (positive, normal) value's binary exponent into `exponent`, leaving [1, 2).
#[inline(always)]
fn renormalise(acc: &mut [f32], exponent: &mut [i32]) {
    for (x, e) in acc.iter_mut().zip(exponent.iter_mut()) {
        let bits = x.to_bits();
        *e += ((bits >> 23) & 0xff) as i32 - 127;
        *x = f32::from_bits((bits & 0x807f_ffff) | 0x3f80_0000);
    }
}

/// [`sum_log_factors_f32`] in f64 with one logarithm per `group` factors.
fn sum_log_factors_f64<'a>(
    rows: impl Iterator<Item = (&'a [f32], f32)>,
    floors: &[f64],
    slopes: &[f32],
    group: usize,
    w: usize,
) -> Vec<f64> {
    xai_models::simd::vectorize(
        #[inline(always)]
        move || {
            let mut total = vec![0f64; w];
            let mut acc = vec![1f64; w];
            let mut in_group = 0;
            for (((p, scale), &floor), &slope) in rows.zip(floors).zip(slopes) {
                let slope = slope as f64 * scale as f64;
                for (x, &v) in acc.iter_mut().zip(p) {
                    *x *= floor + slope * v as f64;
                }
                in_group += 1;
                if in_group == group {
                    for (t, x) in total.iter_mut().zip(acc.iter_mut()) {
                        *t += x.ln();
                        *x = 1.0;
                    }
                    in_group = 0;
                }
            }
            for (t, x) in total.iter_mut().zip(&acc) {
                *t += x.ln();
            }
            total
        },
    )
}

/// `Σ_rows f(x[row, c])` for each column, in f64: blocks of rows in parallel, each read in
/// memory order, their partial sums added at the end.
fn column_sums(x: ArrayView2<'_, f32>, f: impl Fn(f32) -> f64 + Sync) -> Vec<f64> {
    let c = x.ncols();
    let x = x.as_standard_layout();
    let flat = x.as_slice().unwrap_or(&[]);
    if c == 0 {
        return Vec::new();
    }
    flat.par_chunks(c * 256)
        .map(|block| {
            xai_models::simd::vectorize(
                #[inline(always)]
                || {
                    let mut sums = vec![0f64; c];
                    for row in block.chunks(c) {
                        for (acc, &v) in sums.iter_mut().zip(row) {
                            *acc += f(v);
                        }
                    }
                    sums
                },
            )
        })
        .reduce(
            || vec![0f64; c],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        )
}

/// The L2 norm of each column (`clip`: norms below it are raised to it), accumulated in f64.
fn column_norms(x: ArrayView2<'_, f32>, clip: Option<f32>) -> Vec<f32> {
    column_sums(x, |v| (v as f64) * (v as f64))
        .into_iter()
        .map(|v| {
            let n = v.sqrt() as f32;
            clip.map_or(n, |m| n.max(m))
        })
        .collect()
}

/// The mean of each column, accumulated in f64.
fn column_means(x: ArrayView2<'_, f32>) -> Vec<f32> {
    let n = x.nrows() as f64;
    column_sums(x, |v| v as f64)
        .into_iter()
        .map(|v| (v / n) as f32)
        .collect()
}

/// `aᵀ·s / (|a_u|·|s_c|)`: the product of column-normalised matrices, with the norms applied
/// to the small result instead of to `s` (which may be gigabytes).
fn normalised_product(
    a: ArrayView2<'_, f32>,
    s: ArrayView2<'_, f32>,
    clip: Option<f32>,
) -> Result<Array2<f32>> {
    let (na, ns) = (column_norms(a, clip), column_norms(s, clip));
    let mut out = at_b(a, s)?;
    for (mut row, &nu) in out.axis_iter_mut(Axis(0)).zip(&na) {
        for (v, &nc) in row.iter_mut().zip(&ns) {
            *v = *v / nu / nc;
        }
    }
    Ok(out)
}

/// `aᵀ · s` with candle's multithreaded matmul.
fn at_b(a: ArrayView2<'_, f32>, s: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    use candle_core::{Device, Tensor};
    let (n, u) = a.dim();
    let c = s.ncols();
    let at: Vec<f32> = a.t().as_standard_layout().iter().copied().collect();
    let at = Tensor::from_vec(at, (u, n), &Device::Cpu)?;
    let st = match s.as_slice() {
        Some(data) => Tensor::from_slice(data, (n, c), &Device::Cpu)?,
        None => Tensor::from_vec(s.iter().copied().collect::<Vec<_>>(), (n, c), &Device::Cpu)?,
    };
    let out = at.matmul(&st)?.flatten_all()?.to_vec1::<f32>()?;
    Array2::from_shape_vec((u, c), out).map_err(|e| Error::Parameter {
        name: "inputs",
        reason: e.to_string(),
    })
}

fn cos(s: ArrayView2<'_, f32>, a: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    normalised_product(a, s, None)
}

fn cos3(s: ArrayView2<'_, f32>, a: ArrayView2<'_, f32>, min_norm: f32) -> Result<Array2<f32>> {
    let centred_cubes = |x: ArrayView2<'_, f32>| {
        let means = column_means(x);
        let mut y = x.as_standard_layout().into_owned();
        if let Some(flat) = y.as_slice_mut() {
            flat.par_chunks_mut(means.len().max(1)).for_each(|row| {
                xai_models::simd::vectorize(
                    #[inline(always)]
                    || {
                        for (v, &m) in row.iter_mut().zip(&means) {
                            let d = *v - m;
                            *v = d * d * d;
                        }
                    },
                )
            });
        }
        y
    };
    normalised_product(
        centred_cubes(a).view(),
        centred_cubes(s).view(),
        Some(min_norm),
    )
}

/// Rank reorder without its baseline: `(−err_raw[u,c] / avg[u,c]^scale_p, baseline[u])`, so
/// that the score is `raw / baseline`. Exposed because the baseline is random; parity tests
/// compare the raw part.
pub fn rank_reorder_parts(
    s: ArrayView2<'_, f32>,
    a: ArrayView2<'_, f32>,
    params: &RankReorder,
) -> Result<(Array2<f32>, Vec<f32>)> {
    check_inputs(s, a)?;
    let (n, c_total) = s.dim();
    let top_n = (n as f64 * params.top_fraction as f64).floor() as usize;
    if top_n == 0 {
        return Err(Error::Parameter {
            name: "top_fraction",
            reason: format!(
                "{} of {n} images is less than one image; rank reorder needs more probe images",
                params.top_fraction
            ),
        });
    }
    let tops = top_images(a, top_n);
    let p = params.p;
    let results: Vec<(Vec<f32>, f32)> = tops
        .par_iter()
        .enumerate()
        .map(|(u, idx)| {
            let t: Vec<f32> = idx.iter().map(|&i| a[[i, u]]).collect();
            let asc: Vec<f32> = t.iter().rev().copied().collect();
            let mut rng = rand::rngs::StdRng::seed_from_u64(
                params.seed ^ (u as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let mut base = 0f64;
            for _ in 0..5 {
                let mut perm: Vec<usize> = (0..top_n).collect();
                perm.shuffle(&mut rng);
                for (j, &pj) in perm.iter().enumerate() {
                    base += ((asc[j] - asc[pj]).abs() as f64).powf(p as f64);
                }
            }
            let base = (base / (5 * top_n) as f64) as f32;
            let mut out = vec![0f32; c_total];
            let mut col: Vec<(f32, usize)> = Vec::with_capacity(top_n);
            for (c, o) in out.iter_mut().enumerate() {
                col.clear();
                col.extend(idx.iter().enumerate().map(|(j, &i)| (s[[i, c]], j)));
                let avg = (col.iter().map(|x| x.0 as f64).sum::<f64>() / top_n as f64) as f32;
                // Rank of each entry within the column, ascending (ties by position).
                col.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                let mut err = 0f64;
                for (rank, &(_, j)) in col.iter().enumerate() {
                    err += ((t[j] - asc[rank]).abs() as f64).powf(p as f64);
                }
                let err = (err / top_n as f64) as f32;
                *o = -err / avg.powf(params.scale_p);
            }
            (out, base)
        })
        .collect();
    let mut raw = Array2::<f32>::zeros((a.ncols(), c_total));
    let mut bases = Vec::with_capacity(results.len());
    for (u, (row, b)) in results.into_iter().enumerate() {
        raw.row_mut(u).assign(&ndarray::ArrayView1::from(&row));
        bases.push(b);
    }
    Ok((raw, bases))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_broken_by_index_and_the_order_is_descending() {
        let a = ndarray::array![[0.0f32], [3.0], [0.0], [3.0], [1.0]];
        assert_eq!(top_images(a.view(), 4), vec![vec![1, 3, 4, 0]]);
        assert_eq!(top_images(a.view(), 9), vec![vec![1, 3, 4, 0, 2]]);
    }

    #[test]
    fn the_fast_exponential_is_within_3e_7_relative() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let ours = super::exp_f32(x) as f64;
            let exact = (x as f64).exp();
            worst = worst.max(((ours - exact) / exact).abs());
            x += 0.000_37;
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(super::exp_f32(-100.0), 0.0);
        assert_eq!(super::exp_f32(0.0), 1.0);
    }

    #[test]
    fn non_finite_inputs_are_refused_with_their_position() {
        let mut s = ndarray::Array2::<f32>::from_elem((3, 2), 0.2);
        let a = ndarray::Array2::<f32>::from_elem((3, 1), 1.0);
        s[[2, 1]] = f32::NAN;
        let err = Similarity::Cos
            .compute(s.view(), a.view())
            .unwrap_err()
            .to_string();
        assert!(err.contains("image 2, concept 1"), "{err}");
        s[[2, 1]] = 0.1;
        let mut a = a;
        a[[1, 0]] = f32::INFINITY;
        let err = Similarity::default()
            .compute(s.view(), a.view())
            .unwrap_err()
            .to_string();
        assert!(err.contains("image 1, unit 0"), "{err}");
    }

    #[test]
    fn stored_and_recomputed_exponentials_give_the_same_scores() {
        // 700 concepts (two chunks) and 130 rows (three row groups, the last one short).
        let (n, c, u) = (130, 700, 6);
        let s = Array2::from_shape_fn((n, c), |(i, j)| ((i * 31 + j * 17) % 97) as f32 / 300.0);
        let a = Array2::from_shape_fn((n, u), |(i, j)| ((i * 7 + j * 13) % 11) as f32);
        for kind in [
            PmiKind::Soft {
                p_start: 0.998,
                p_end: 0.97,
            },
            PmiKind::Plain,
        ] {
            let stored = pmi(s.view(), a.view(), kind, 40, 10.0, 1.0, 1e-7, usize::MAX);
            let recomputed = pmi(s.view(), a.view(), kind, 40, 10.0, 1.0, 1e-7, 0);
            let diff = stored
                .iter()
                .zip(&recomputed)
                .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
                .fold(0f32, f32::max);
            assert!(diff < 1e-6, "{diff}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in SIMILARITY_NAMES {
            assert_eq!(Similarity::from_name(n).unwrap().name(), n);
        }
        assert!(Similarity::from_name("nope").is_err());
    }
}
