//! Felzenszwalb–Huttenlocher graph segmentation.
//!
//! Felzenszwalb, P. F. and Huttenlocher, D. P., *Efficient graph-based image segmentation*,
//! IJCV 59(2), 2004; with scikit-image's `skimage.segmentation.felzenszwalb` semantics
//! (0.13–0.26).

use ndarray::{Array2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

use super::{check_at_least, check_image, gaussian, rank_roots, Segmenter};
use crate::{Error, Result};

/// Felzenszwalb's graph-based segmentation, as `skimage.segmentation.felzenszwalb`.
///
/// The image is smoothed with a Gaussian of `sigma`. Each pixel is joined to its 8
/// neighbours by an edge weighted with the Euclidean distance of their colours (all channels
/// together). Edges are visited by increasing weight; two segments merge when the edge is
/// lighter than both their internal differences plus `scale / 255 / size`. Segments smaller
/// than `min_size` pixels are then merged along the same edge order. Labels are 0..K−1,
/// numbered by each segment's first pixel in raster order.
///
/// Ties between equal edge weights are taken in a stable order (edges are built right, down,
/// down-right, up-right, each in raster order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Felzenszwalb {
    /// Observation scale `k`: larger gives larger segments.
    pub scale: f64,
    /// σ of the Gaussian smoothing before segmenting; 0 for none.
    pub sigma: f64,
    /// Minimum segment size in pixels, enforced after the main pass.
    pub min_size: usize,
}

impl Default for Felzenszwalb {
    fn default() -> Self {
        Self {
            scale: 1.0,
            sigma: 0.8,
            min_size: 20,
        }
    }
}

impl Felzenszwalb {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if !self.scale.is_finite() {
            return Err(Error::param(
                "scale",
                format!("must be finite, got {}", self.scale),
            ));
        }
        check_at_least("sigma", self.sigma, 0.0)
    }
}

impl Segmenter for Felzenszwalb {
    fn name(&self) -> &'static str {
        "felzenszwalb"
    }

    fn segment(&self, image: ArrayView3<'_, f64>) -> Result<Array2<i32>> {
        self.validate()?;
        check_image(&image, "felzenszwalb")?;
        let (h, w, ch) = image.dim();
        let mut img = image.as_standard_layout().into_owned();
        gaussian::filter_axis(&mut img, Axis(0), self.sigma);
        gaussian::filter_axis(&mut img, Axis(1), self.sigma);
        let data = img.as_slice().unwrap_or(&[]);
        let planes: Vec<Vec<f64>> = (0..ch)
            .map(|c| data.iter().skip(c).step_by(ch).copied().collect())
            .collect();

        // Edges (weight bits, first, second) in scikit-image's block order: right, down,
        // down-right, up-right, each in raster order; the weight is NumPy's
        // sqrt(sum((a − b)·(a − b), axis=-1)), channels summed left to right.
        let (hm, wm) = (h.saturating_sub(1), w.saturating_sub(1));
        // (rows, columns, offset of the first pixel, offset of the second pixel)
        let blocks = [
            (h, wm, 1usize, 0usize),
            (hm, w, w, 0),
            (hm, wm, w + 1, 0),
            (hm, wm, 1, w),
        ];
        let n_edges: usize = blocks.iter().map(|&(r, c, _, _)| r * c).sum();
        let mut edges: Vec<(u64, u32, u32)> = Vec::with_capacity(n_edges);
        let mut row_cost = vec![0f64; w];
        for (rows, cols, fa, fb) in blocks {
            for y in 0..rows {
                let out = &mut row_cost[..cols];
                out.fill(0.0);
                for plane in &planes {
                    let a = &plane[y * w + fa..][..cols];
                    let b = &plane[y * w + fb..][..cols];
                    for ((o, x), z) in out.iter_mut().zip(a).zip(b) {
                        let d = x - z;
                        *o += d * d;
                    }
                }
                edges.extend(out.iter().enumerate().map(|(x, &c)| {
                    (
                        c.sqrt().to_bits(),
                        (y * w + x + fa) as u32,
                        (y * w + x + fb) as u32,
                    )
                }));
            }
        }
        // Stable order by weight (weights are non-negative, so their bits sort as numbers).
        let edges = radix_sort_edges(edges);

        let n = h * w;
        let scale = self.scale / 255.0;
        let mut forest = Forest::new(n);
        let mut size = vec![1usize; n];
        let mut internal = vec![0.0f64; n];
        for &(c, a, b) in &edges {
            let c = f64::from_bits(c);
            let s0 = forest.find(a as usize);
            let s1 = forest.find(b as usize);
            if s0 == s1 {
                continue;
            }
            // scikit-image keeps these thresholds in single precision.
            let t0 = (internal[s0] + scale / size[s0] as f64) as f32;
            let t1 = (internal[s1] + scale / size[s1] as f64) as f32;
            if c < f64::from(t0.min(t1)) {
                let root = forest.union(s0, s1);
                size[root] = size[s0] + size[s1];
                internal[root] = c;
            }
        }
        for &(_, a, b) in &edges {
            let s0 = forest.find(a as usize);
            let s1 = forest.find(b as usize);
            if s0 == s1 {
                continue;
            }
            if size[s0] < self.min_size || size[s1] < self.min_size {
                let root = forest.union(s0, s1);
                size[root] = size[s0] + size[s1];
            }
        }
        let roots: Vec<usize> = (0..n).map(|i| forest.find(i)).collect();
        Ok(rank_roots(&roots, (h, w)))
    }
}

/// `items` (edges `(weight bits, first, second)`) stably sorted by weight: LSD radix sort on the bit
/// patterns of the (non-negative, finite) weights, 11 bits per pass (six passes for 64 bits),
/// skipping the passes where every key has the same digit. Edges travel whole, so every pass
/// reads sequentially.
fn radix_sort_edges(mut items: Vec<(u64, u32, u32)>) -> Vec<(u64, u32, u32)> {
    const BITS: usize = 11;
    const RADIX: usize = 1 << BITS;
    const PASSES: usize = 64usize.div_ceil(BITS);
    let n = items.len();
    let mut next = vec![(0u64, 0u32, 0u32); n];
    // All histograms in one read.
    let mut counts = vec![[0usize; RADIX]; PASSES];
    for &(b, _, _) in &items {
        for (pass, count) in counts.iter_mut().enumerate() {
            count[((b >> (pass * BITS)) as usize) & (RADIX - 1)] += 1;
        }
    }
    for (pass, count) in counts.iter().enumerate() {
        if count.contains(&n) {
            continue;
        }
        let shift = pass * BITS;
        let mut start = vec![0usize; RADIX];
        let mut sum = 0;
        for (s, &c) in start.iter_mut().zip(count) {
            *s = sum;
            sum += c;
        }
        for &item in &items {
            let d = ((item.0 >> shift) as usize) & (RADIX - 1);
            next[start[d]] = item;
            start[d] += 1;
        }
        std::mem::swap(&mut items, &mut next);
    }
    items
}

/// Union–find whose root is always the smallest index of its set.
struct Forest {
    parent: Vec<usize>,
}

impl Forest {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            let p = self.parent[i];
            self.parent[i] = self.parent[p];
            i = p;
        }
        i
    }

    /// Joins two roots; the smaller index becomes the root and is returned.
    fn union(&mut self, a: usize, b: usize) -> usize {
        let (root, child) = if a < b { (a, b) } else { (b, a) };
        self.parent[child] = root;
        root
    }
}
