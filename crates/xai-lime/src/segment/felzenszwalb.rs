//! Felzenszwalb–Huttenlocher graph segmentation.
//!
//! Felzenszwalb, P. F. and Huttenlocher, D. P., *Efficient graph-based image segmentation*,
//! IJCV 59(2), 2004; with scikit-image's `skimage.segmentation.felzenszwalb` semantics
//! (0.13–0.26).

use ndarray::{Array2, ArrayView3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError};

use xai_models::simd::vectorize;

use super::{
    check_at_least, check_image, gaussian, resize_for_overwrite, with_kept, Buffers, Segmenter,
};
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
        super::on_worker(|| self.segment_on_worker(image))
    }
}

impl Felzenszwalb {
    fn segment_on_worker(&self, image: ArrayView3<'_, f64>) -> Result<Array2<i32>> {
        self.validate()?;
        check_image(&image, "felzenszwalb")?;
        let (h, w, _) = image.dim();
        let n = h * w;
        if n >= 1 << PIXEL_BITS {
            return Err(Error::Data(format!(
                "felzenszwalb: the image has too many pixels ({h}×{w}); at most {} are supported",
                (1usize << PIXEL_BITS) - 1
            )));
        }
        let mut buffers = Buffers::take();
        gaussian::smooth_planes(image, self.sigma, &mut buffers.planes);
        let graph = Graph::build(
            &buffers.planes,
            (h, w),
            &mut buffers.edges,
            &mut buffers.weights,
        );
        let scale = self.scale / 255.0;
        let min_size = self.min_size.min(u32::MAX as usize) as u32;
        // Both passes consume the sorted edges bucket by bucket while later buckets are still
        // being sorted on the other thread.
        let forest = graph.sort_edges(
            (&mut buffers.edges, &mut buffers.spare),
            |sorted: &mut dyn Iterator<Item = &[u64]>| {
                let mut seen = Vec::new();
                let mut forest = main_pass(&graph, sorted, &mut seen, n, scale);
                forest.compress();
                merge_small(
                    &graph,
                    seen.into_iter().chain(sorted),
                    &mut forest,
                    min_size,
                );
                forest
            },
        );
        let labels = forest.labels();
        buffers.give_back();
        Array2::from_shape_vec((h, w), labels)
            .map_err(|e| Error::Data(format!("felzenszwalb: internal shape error: {e}")))
    }
}

/// Felzenszwalb's main pass over the sorted edges of `graph` (`n` pixels): an edge joins two
/// segments when it is lighter than both their thresholds, internal difference + scale / 255 /
/// size, which scikit-image keeps in single precision; each root keeps its threshold,
/// recomputed when it grows. Weights only increase along the order, so once one exceeds every
/// threshold so far no edge can join any more, and the pass stops.
fn main_pass<'b>(
    graph: &Graph<'_>,
    sorted: &mut dyn Iterator<Item = &'b [u64]>,
    seen: &mut Vec<&'b [u64]>,
    n: usize,
    scale: f64,
) -> Forest {
    let mut forest = Forest::new(n);
    let mut threshold = vec![scale as f32; n];
    let mut ceiling = scale as f32;
    for bucket in sorted {
        seen.push(bucket);
        for &edge in bucket {
            let key = f32::from_bits((edge >> 32) as u32);
            if key > ceiling {
                return forest;
            }
            let (a, b) = graph.ends(edge);
            let s0 = forest.find(a);
            let s1 = forest.find(b);
            let t = threshold[s0 as usize].min(threshold[s1 as usize]);
            // The key is the weight rounded to single precision, so it decides the comparison
            // unless it equals the threshold. Few edges join, at random: no branch on s0 == s1.
            let lighter = key < t || (key == t && graph.weight(edge) < f64::from(t));
            let joins = (s0 != s1) & lighter;
            if joins {
                let c = graph.weight(edge);
                let root = forest.union(s0, s1);
                let t = (c + scale / f64::from(forest.size(root))) as f32;
                threshold[root as usize] = t;
                ceiling = ceiling.max(t);
            }
        }
    }
    forest
}

/// Felzenszwalb's second pass: segments under `min_size` pixels merge along the same edge
/// order (`sorted`, from the first edge). Segments only grow, so once none is small the
/// remaining edges change nothing and the pass stops.
///
/// For the same reason, a pixel once seen in a segment of at least `min_size` stays in one. Such
/// pixels are marked in a byte map (an eighth of the forest's size), and an edge between two
/// marked pixels cannot join anything: it is passed over without its two finds, whose
/// dependent loads are most of the pass's time. The edges are filtered 256 at a time against
/// the marks made before (59% of them passed over on photos at 224², 61% at 512²; 12–14%
/// faster calls).
fn merge_small<'b>(
    graph: &Graph<'_>,
    sorted: impl Iterator<Item = &'b [u64]>,
    forest: &mut Forest,
    min_size: u32,
) {
    let mut small = forest.count_small_roots(min_size);
    let mut in_large = vec![false; forest.len()];
    let mut kept = [0u64; 256];
    for bucket in sorted {
        for chunk in bucket.chunks(kept.len()) {
            if small == 0 {
                return;
            }
            // Without a branch: which edges are passed over is random.
            let mut k = 0;
            for &edge in chunk {
                let (a, b) = graph.ends(edge);
                kept[k] = edge;
                k += usize::from(!(in_large[a as usize] & in_large[b as usize]));
            }
            for &edge in &kept[..k] {
                let (a, b) = graph.ends(edge);
                let s0 = forest.find(a);
                let s1 = forest.find(b);
                let (z0, z1) = (forest.size(s0), forest.size(s1));
                // Whether an edge joins is random: no branch on it.
                let joins = (s0 != s1) & ((z0 < min_size) | (z1 < min_size));
                forest.union_if(s0, s1, joins);
                let after = usize::from(z0 + z1 < min_size);
                let before = usize::from(z0 < min_size) + usize::from(z1 < min_size);
                let joined = usize::from(joins);
                small = small + joined * after - joined * before;
                let grown = joins & (z0 + z1 >= min_size);
                in_large[a as usize] = (z0 >= min_size) | grown;
                in_large[b as usize] = (z1 >= min_size) | grown;
            }
        }
    }
}

/// Pixel indices take the low bits of an edge's id, its block (direction) the two above.
const PIXEL_BITS: u32 = 30;

/// The 8-connected grid graph of a smoothed image, edges in scikit-image's block order: right,
/// down, down-right, up-right, each in raster order. Edge `(block, p)` joins pixels
/// `p + first[block]` and `p + second[block]`, where p = y·w + x runs over the block's rows and
/// columns; its weight is NumPy's `sqrt(sum((a − b)·(a − b), axis=-1))`, channels summed left
/// to right.
struct Graph<'a> {
    first: [u32; 4],
    second: [u32; 4],
    /// Each edge's weight, at `block · n + p` for `n` pixels: computed once, with the keys,
    /// for the few edges whose exact weight is needed again (the joins, equal keys).
    weights: &'a [f64],
    n: usize,
}

impl<'a> Graph<'a> {
    /// The graph of `planes` (`h` × `w` each): every edge into `edges` as
    /// `(weight as f32).to_bits() << 32 | block << 30 | p`, in block order (edges are built
    /// in parallel, in tasks of whole rows of one block), and every weight into `weights`.
    /// Both buffers are resized; their memory is reused.
    fn build(
        planes: &'a [Vec<f64>],
        (h, w): (usize, usize),
        edges: &mut Vec<u64>,
        weights: &'a mut Vec<f64>,
    ) -> Self {
        let n = h * w;
        let w32 = w as u32;
        let first = [1, w32, w32 + 1, 1];
        let second = [0, 0, 0, w32];
        let (hm, wm) = (h.saturating_sub(1), w.saturating_sub(1));
        // (rows, columns) of each block.
        let blocks = [(h, wm), (hm, w), (hm, wm), (hm, wm)];
        // Every value read is overwritten: a reused buffer of the right length is not cleared.
        resize_for_overwrite(edges, blocks.iter().map(|b| b.0 * b.1).sum());
        resize_for_overwrite(weights, 4 * n);
        let mut tasks: Vec<(usize, usize, &mut [u64], &mut [f64])> = Vec::new();
        let (mut rest, mut rest_weights): (&mut [u64], &mut [f64]) = (edges, weights);
        for (block, &(rows, cols)) in blocks.iter().enumerate() {
            let (mine, others) = rest.split_at_mut(rows * cols);
            let (my_weights, other_weights) = rest_weights.split_at_mut(n);
            (rest, rest_weights) = (others, other_weights);
            if cols == 0 {
                continue;
            }
            let rows_per_task = (16384 / cols).max(1);
            let pieces = mine
                .chunks_mut(rows_per_task * cols)
                .zip(my_weights.chunks_mut(rows_per_task * w));
            for (t, (chunk, chunk_weights)) in pieces.enumerate() {
                tasks.push((block, t * rows_per_task, chunk, chunk_weights));
            }
        }
        tasks
            .into_par_iter()
            .for_each(|(block, y0, chunk, chunk_weights)| {
                let cols = blocks[block].1;
                let ends = (first[block] as usize, second[block] as usize);
                for (i, out) in chunk.chunks_exact_mut(cols).enumerate() {
                    let at = (y0 + i) * w;
                    let (ends, base) = (
                        (at + ends.0, at + ends.1),
                        ((block as u64) << PIXEL_BITS) | at as u64,
                    );
                    let row_weights = &mut chunk_weights[i * w..i * w + cols];
                    vectorize(
                        #[inline(always)]
                        || {
                            let mut x = 0;
                            while x + 8 <= cols {
                                edge_lanes::<8>(planes, ends, x, base, out, row_weights);
                                x += 8;
                            }
                            while x < cols {
                                edge_lanes::<1>(planes, ends, x, base, out, row_weights);
                                x += 1;
                            }
                        },
                    );
                }
            });
        Self {
            first,
            second,
            weights,
            n,
        }
    }

    /// An edge's block and pixel `p`, from the low word of its sort item.
    #[inline(always)]
    fn block_and_pixel(edge: u64) -> (usize, u32) {
        let id = edge as u32;
        ((id >> PIXEL_BITS) as usize, id & ((1 << PIXEL_BITS) - 1))
    }

    /// The two pixels an edge joins.
    #[inline(always)]
    fn ends(&self, edge: u64) -> (u32, u32) {
        let (block, p) = Self::block_and_pixel(edge);
        (p + self.first[block], p + self.second[block])
    }

    /// An edge's weight.
    #[inline(always)]
    fn weight(&self, edge: u64) -> f64 {
        let (block, p) = Self::block_and_pixel(edge);
        self.weights[block * self.n + p as usize]
    }

    /// The edges (as [`Self::build`] left them) ordered by weight, ties in the block order (a
    /// stable sort by weight), in place; `spare` is the sort's second buffer. `consume` reads
    /// the sorted edges in order, in pieces, while later ones are still being sorted (see
    /// [`radix_sort_high_words`]); its result is returned.
    fn sort_edges<R: Send>(
        &self,
        (edges, spare): (&mut Vec<u64>, &mut Vec<u64>),
        consume: impl for<'b> FnOnce(&mut dyn Iterator<Item = &'b [u64]>) -> R + Send,
    ) -> R {
        radix_sort_high_words(
            edges,
            spare,
            &|bucket: &mut [u64]| self.order_ties(bucket),
            consume,
        )
    }

    /// Orders the runs of equal keys in sorted `edges` by weight, stably: equal
    /// single-precision keys may hide different weights (runs are mostly pairs, but all of a
    /// flat region's edges where weights are 0).
    fn order_ties(&self, edges: &mut [u64]) {
        let key = |e: u64| e >> 32;
        let mut i = 1;
        while i < edges.len() {
            if key(edges[i]) != key(edges[i - 1]) {
                i += 1;
                continue;
            }
            let start = i - 1;
            let len = edges[start..]
                .iter()
                .take_while(|&&e| key(e) == key(edges[start]))
                .count();
            self.order_by_weight(&mut edges[start..start + len]);
            i = start + len + 1;
        }
    }

    /// Sorts `run` (edges of one key) by weight, stably.
    fn order_by_weight(&self, run: &mut [u64]) {
        const SHORT: usize = 16;
        if run.len() <= SHORT {
            // Insertion sort on weights computed once each.
            let mut items = [(0.0f64, 0u64); SHORT];
            for (item, &e) in items.iter_mut().zip(run.iter()) {
                *item = (self.weight(e), e);
            }
            let items = &mut items[..run.len()];
            for i in 1..items.len() {
                let mut j = i;
                while j > 0 && items[j - 1].0 > items[j].0 {
                    items.swap(j - 1, j);
                    j -= 1;
                }
            }
            for (e, item) in run.iter_mut().zip(items.iter()) {
                *e = item.1;
            }
            return;
        }
        let first = self.weight(run[0]);
        if run[1..].iter().any(|&e| self.weight(e) != first) {
            run.sort_by_cached_key(|&e| self.weight(e).to_bits());
        }
    }
}

/// Edges `x..x + L` of a row into `edges` and their weights into `weights`: the pixels from
/// `a + x` of every plane against those from `b + x`, the squares summed in plane order in
/// registers (one pass, where a row buffer added to plane by plane took three more).
#[inline(always)]
fn edge_lanes<const L: usize>(
    planes: &[Vec<f64>],
    (a, b): (usize, usize),
    x: usize,
    base: u64,
    edges: &mut [u64],
    weights: &mut [f64],
) {
    let mut acc = [0.0f64; L];
    for plane in planes {
        let (pa, pb) = (&plane[a + x..a + x + L], &plane[b + x..b + x + L]);
        for l in 0..L {
            let d = pa[l] - pb[l];
            acc[l] += d * d;
        }
    }
    let (edges, weights) = (&mut edges[x..x + L], &mut weights[x..x + L]);
    for l in 0..L {
        let c = acc[l].sqrt();
        weights[l] = c;
        edges[l] = (u64::from((c as f32).to_bits()) << 32) | (base + (x + l) as u64);
    }
}

/// Sorts `items` stably by their high 32 bits, which are the bits of non-negative `f32`s (so
/// they sort as numbers); `spare` is scratch space. One most-significant-digit pass on the top
/// 10 bits splits the items into buckets, then each bucket (small enough for the cache) is
/// sorted on its own by [`sort_bucket`] and handed to `finish_bucket` (equal keys never span
/// two buckets).
///
/// `consume` sees the sorted buckets in order as soon as each is sorted: it sorts the next one
/// itself unless a helper on the other thread, running ahead in order, already has (with one
/// thread, it sorts each as it comes). Once it returns, the rest are sorted in parallel. Its
/// result is returned.
fn radix_sort_high_words<R: Send>(
    items: &mut Vec<u64>,
    spare: &mut Vec<u64>,
    finish_bucket: &(dyn Fn(&mut [u64]) + Sync),
    consume: impl for<'b> FnOnce(&mut dyn Iterator<Item = &'b [u64]>) -> R + Send,
) -> R {
    const TOP_SHIFT: u32 = 54;
    let n = items.len();
    resize_for_overwrite(spare, n);
    const DIGITS: usize = 1 << (64 - TOP_SHIFT);
    let top = |item: u64| (item >> TOP_SHIFT) as usize;
    // The first pass in parallel: each chunk counts its digits, then scatters into its own
    // share of every digit's range (ranges ordered digit first, chunk second: stable).
    let chunk_len = n.div_ceil(rayon::current_num_threads().max(1)).max(1 << 14);
    let counts: Vec<Vec<usize>> = items
        .par_chunks(chunk_len)
        .map(|chunk| {
            let mut count = vec![0usize; DIGITS];
            for &item in chunk {
                count[top(item)] += 1;
            }
            count
        })
        .collect();
    let count: Vec<usize> = (0..DIGITS)
        .map(|d| counts.iter().map(|c| c[d]).sum())
        .collect();
    let mut shares: Vec<Vec<&mut [u64]>> =
        counts.iter().map(|_| Vec::with_capacity(DIGITS)).collect();
    let mut rest: &mut [u64] = spare;
    for d in 0..DIGITS {
        for (share, chunk_count) in shares.iter_mut().zip(&counts) {
            let (mine, others) = rest.split_at_mut(chunk_count[d]);
            share.push(mine);
            rest = others;
        }
    }
    items
        .par_chunks(chunk_len)
        .zip(shares.into_par_iter())
        .for_each(|(chunk, mut share)| {
            let mut next = vec![0usize; DIGITS];
            for &item in chunk {
                let d = top(item);
                share[d][next[d]] = item;
                next[d] += 1;
            }
        });
    // The buckets, in `spare`.
    let mut buckets: Vec<&mut [u64]> = Vec::new();
    let mut rest: &mut [u64] = spare;
    for &c in count.iter().filter(|&&c| c > 0) {
        let (bucket, others) = rest.split_at_mut(c);
        buckets.push(bucket);
        rest = others;
    }
    // Each bucket is sorted by whichever thread reaches it first: the consumer sorts the one
    // it needs itself unless the helper has taken it (then it waits for that one), so it never
    // depends on the helper having started, which on a loaded machine can take milliseconds.
    let slots: Vec<Mutex<Bucket<'_>>> = buckets
        .into_iter()
        .map(|bucket| Mutex::new(Bucket::Unsorted(bucket)))
        .collect();
    let stopped = AtomicBool::new(false);
    let (result, ()) = rayon::join(
        || {
            let result = consume(
                &mut slots
                    .iter()
                    .map_while(|slot| Bucket::sorted_in(slot, finish_bucket)),
            );
            stopped.store(true, Ordering::Release);
            result
        },
        || {
            for slot in &slots {
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                // A bucket the consumer is sorting is skipped.
                if let Ok(mut state) = slot.try_lock() {
                    state.sort(finish_bucket);
                }
            }
        },
    );
    // The buckets after the consumer stopped.
    slots.into_par_iter().for_each(|slot| {
        if let Ok(mut state) = slot.into_inner() {
            state.sort(finish_bucket);
        }
    });
    std::mem::swap(items, spare);
    result
}

/// A bucket of [`radix_sort_high_words`]: its items, or its sorted items.
enum Bucket<'b> {
    Unsorted(&'b mut [u64]),
    Sorted(&'b [u64]),
}

thread_local! {
    /// The second buffer of [`sort_bucket`], one per thread, kept between buckets and calls:
    /// a bucket's own range of the sort's second buffer is cold (the sort's buffers are
    /// larger than the cache), and with it the bucket sorts took 1.34 instead of 1.20 ms of
    /// CPU time per call at 224×224.
    static BUCKET_SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<'b> Bucket<'b> {
    /// The sorted items of the bucket in `slot`, sorting them first if no thread has;
    /// `None` only if a thread panicked while sorting it.
    fn sorted_in(
        slot: &Mutex<Bucket<'b>>,
        finish_bucket: &(dyn Fn(&mut [u64]) + Sync),
    ) -> Option<&'b [u64]> {
        let mut tries = 0u32;
        loop {
            match slot.try_lock() {
                Ok(mut bucket) => return Some(bucket.sort(finish_bucket)),
                Err(TryLockError::Poisoned(_)) => return None,
                // The helper is sorting it, for a fraction of a millisecond: waiting without
                // parking the thread, whose waking would take longer than that on a small
                // machine.
                Err(TryLockError::WouldBlock) => {
                    tries += 1;
                    if tries < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    /// Sorts the bucket if it is not yet (then `finish_bucket` it); its sorted items.
    fn sort(&mut self, finish_bucket: &(dyn Fn(&mut [u64]) + Sync)) -> &'b [u64] {
        let sorted = match std::mem::replace(self, Bucket::Sorted(&[])) {
            Bucket::Unsorted(bucket) => {
                with_kept(&BUCKET_SCRATCH, Buffers::trim, |scratch| {
                    if scratch.len() < bucket.len() {
                        scratch.resize(bucket.len(), 0);
                    }
                    sort_bucket(bucket, &mut scratch[..bucket.len()]);
                });
                finish_bucket(bucket);
                shared(bucket)
            }
            Bucket::Sorted(sorted) => sorted,
        };
        *self = Bucket::Sorted(sorted);
        sorted
    }
}

/// Gives up a mutable borrow for a shared one of the same lifetime.
fn shared(values: &mut [u64]) -> &[u64] {
    values
}

/// Sorts `bucket` stably by bits 32..54, with `scratch` (as long) as the second buffer:
/// least-significant-digit passes of 8, 7 and 7 bits, each skipped where every item has the
/// same digit.
fn sort_bucket(bucket: &mut [u64], scratch: &mut [u64]) {
    // At most 256 destinations a pass, whose cache lines stay in the first-level cache while
    // they fill. With 2048 (two passes of 11 bits) they did not: the bucket sorts took 1.58
    // instead of 1.34 ms of CPU time per call at 224×224.
    const PASSES: [(u32, usize); 3] = [(32, 8), (40, 7), (47, 7)];
    if bucket.len() <= 32 {
        // Insertion sort (stable).
        for i in 1..bucket.len() {
            let item = bucket[i];
            let mut j = i;
            while j > 0 && bucket[j - 1] >> 32 > item >> 32 {
                bucket[j] = bucket[j - 1];
                j -= 1;
            }
            bucket[j] = item;
        }
        return;
    }
    let digit =
        |item: u64, (shift, bits): (u32, usize)| ((item >> shift) as usize) & ((1 << bits) - 1);
    // Four sets of counts, taking the items in turn: neighbouring items' high digits are
    // often equal (their weights are alike), and with one set each increment would wait for
    // the one before (1.20 against 1.13 ms).
    let mut sets = [[[0u32; 256]; 3]; 4];
    let mut quads = bucket.chunks_exact(4);
    for quad in &mut quads {
        for (counts, &item) in sets.iter_mut().zip(quad) {
            for (count, &pass) in counts.iter_mut().zip(&PASSES) {
                count[digit(item, pass)] += 1;
            }
        }
    }
    for &item in quads.remainder() {
        for (count, &pass) in sets[0].iter_mut().zip(&PASSES) {
            count[digit(item, pass)] += 1;
        }
    }
    let mut counts = sets[0];
    for set in &sets[1..] {
        for (count, other) in counts.iter_mut().zip(set) {
            for (c, o) in count.iter_mut().zip(other) {
                *c += o;
            }
        }
    }
    let n = bucket.len();
    let mut in_scratch = false;
    for (count, &pass) in counts.iter().zip(&PASSES) {
        if count.iter().any(|&c| c as usize == n) {
            continue;
        }
        let (from, to): (&[u64], &mut [u64]) = if in_scratch {
            (scratch, bucket)
        } else {
            (bucket, scratch)
        };
        let mut start = [0u32; 256];
        let mut sum = 0;
        for (s, &c) in start.iter_mut().zip(count) {
            *s = sum;
            sum += c;
        }
        for &item in from {
            let d = digit(item, pass);
            to[start[d] as usize] = item;
            start[d] += 1;
        }
        in_scratch = !in_scratch;
    }
    if in_scratch {
        bucket.copy_from_slice(scratch);
    }
}

/// Union–find whose root is always the smallest index of its set, with each root's size
/// beside its parent (one cache line for both).
#[derive(Clone)]
struct Forest {
    nodes: Vec<Node>,
}

#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    size: u32,
}

impl Forest {
    fn new(n: usize) -> Self {
        Self {
            nodes: (0..n as u32)
                .map(|parent| Node { parent, size: 1 })
                .collect(),
        }
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    #[inline(always)]
    fn size(&self, root: u32) -> u32 {
        self.nodes[root as usize].size
    }

    #[inline(always)]
    fn find(&mut self, mut i: u32) -> u32 {
        // Three levels without a branch (the depths are random, the trees shallow), then
        // path halving for the rare deeper node.
        loop {
            let p = self.nodes[i as usize].parent;
            let g = self.nodes[p as usize].parent;
            let gg = self.nodes[g as usize].parent;
            self.nodes[i as usize].parent = gg;
            if self.nodes[gg as usize].parent == gg {
                return gg;
            }
            i = gg;
        }
    }

    /// Joins two roots; the smaller index becomes the root and is returned.
    #[inline(always)]
    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (root, child) = if a < b { (a, b) } else { (b, a) };
        self.nodes[child as usize].parent = root;
        self.nodes[root as usize].size += self.nodes[child as usize].size;
        root
    }

    /// Joins two roots (possibly the same) if `joins`, without a branch; the smaller index
    /// becomes the root.
    #[inline(always)]
    fn union_if(&mut self, a: u32, b: u32, joins: bool) {
        let (root, child) = if a < b { (a, b) } else { (b, a) };
        let grown = self.nodes[root as usize].size + self.nodes[child as usize].size;
        // A root is its own parent: when nothing joins, both writes leave the nodes as they were.
        self.nodes[child as usize].parent = if joins { root } else { child };
        let size = &mut self.nodes[root as usize].size;
        *size = if joins { grown } else { *size };
    }

    /// Points every node at its root: parents never exceed their children, so one forward
    /// sweep suffices.
    fn compress(&mut self) {
        for i in 0..self.nodes.len() {
            let p = self.nodes[i].parent as usize;
            self.nodes[i].parent = self.nodes[p].parent;
        }
    }

    fn count_small_roots(&self, min_size: u32) -> usize {
        self.nodes
            .iter()
            .enumerate()
            .filter(|&(i, node)| node.parent as usize == i && node.size < min_size)
            .count()
    }

    /// Labels 0..K−1 numbered by each set's first pixel, which is its root.
    fn labels(&self) -> Vec<i32> {
        let mut labels = vec![0i32; self.nodes.len()];
        let mut next = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let p = node.parent as usize;
            labels[i] = if p == i {
                next += 1;
                next - 1
            } else {
                labels[p]
            };
        }
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Items whose high words are non-negative `f32` bits with many repeats, low words their
    /// position (so stability is visible).
    fn items(n: usize, distinct: u32, rng: &mut rand::rngs::StdRng) -> Vec<u64> {
        (0..n as u64)
            .map(|i| {
                let key = (rng.random_range(0..distinct) as f32 * 0.37).to_bits();
                (u64::from(key) << 32) | i
            })
            .collect()
    }

    /// Items whose keys lie in one top digit and differ only in their lowest `bits` bits, so
    /// that a bucket sort has 0, 1, 2 or 3 passes to make.
    fn items_in_one_digit(n: usize, bits: u32, rng: &mut rand::rngs::StdRng) -> Vec<u64> {
        (0..n as u64)
            .map(|i| {
                let key = 1.0f32.to_bits() + rng.random_range(0..1u32 << bits);
                (u64::from(key) << 32) | i
            })
            .collect()
    }

    enum Keys {
        Distinct(u32),
        LowBits(u32),
    }

    /// The second pass as written before it passed over edges between pixels known to be in
    /// large segments.
    fn merge_small_every_edge(
        graph: &Graph<'_>,
        sorted: &[u64],
        forest: &mut Forest,
        min_size: u32,
    ) {
        for &edge in sorted {
            let (a, b) = graph.ends(edge);
            let (s0, s1) = (forest.find(a), forest.find(b));
            if s0 != s1 && (forest.size(s0) < min_size || forest.size(s1) < min_size) {
                forest.union(s0, s1);
            }
        }
    }

    #[test]
    fn passing_over_edges_inside_large_segments_changes_no_label() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (h, w) = (61, 47);
        let planes: Vec<Vec<f64>> = (0..3)
            .map(|_| {
                (0..h * w)
                    .map(|_| rng.random_range(0..8) as f64 / 7.0)
                    .collect()
            })
            .collect();
        let (mut edges, mut spare, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        let graph = Graph::build(&planes, (h, w), &mut edges, &mut weights);
        let sorted = graph.sort_edges((&mut edges, &mut spare), |buckets| {
            buckets
                .flat_map(|b| b.iter().copied())
                .collect::<Vec<u64>>()
        });
        for (scale, min_size) in [(1.0, 20), (1.0, 200), (50.0, 5), (300.0, 1000), (1.0, 1)] {
            let mut seen = Vec::new();
            let mut forest = main_pass(
                &graph,
                &mut std::iter::once(&sorted[..]),
                &mut seen,
                h * w,
                scale / 255.0,
            );
            forest.compress();
            let mut expected = forest.clone();
            merge_small_every_edge(&graph, &sorted, &mut expected, min_size);
            merge_small(&graph, sorted.chunks(1000), &mut forest, min_size);
            assert_eq!(
                forest.labels(),
                expected.labels(),
                "scale {scale}, min_size {min_size}"
            );
        }
    }

    #[test]
    fn the_sort_is_stable_and_the_consumer_sees_its_prefix_in_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (n, keys, stop_after) in [
            (0, Keys::Distinct(1), usize::MAX),
            (1, Keys::Distinct(1), usize::MAX),
            (40, Keys::Distinct(3), usize::MAX),
            (5000, Keys::Distinct(7), 1000),
            (200_000, Keys::Distinct(50_000), usize::MAX),
            (200_000, Keys::Distinct(50_000), 30_000),
            (200_000, Keys::Distinct(5), 0),
            (3000, Keys::LowBits(0), usize::MAX),
            (3000, Keys::LowBits(5), usize::MAX),
            (3000, Keys::LowBits(12), usize::MAX),
            (30_000, Keys::LowBits(22), usize::MAX),
        ] {
            let mut sorted = match keys {
                Keys::Distinct(distinct) => items(n, distinct, &mut rng),
                Keys::LowBits(bits) => items_in_one_digit(n, bits, &mut rng),
            };
            let mut expected = sorted.clone();
            expected.sort_by_key(|&item| item >> 32);
            let mut spare = Vec::new();
            let seen = radix_sort_high_words(
                &mut sorted,
                &mut spare,
                &|_: &mut [u64]| {},
                |buckets: &mut dyn Iterator<Item = &[u64]>| {
                    let mut seen: Vec<u64> = Vec::new();
                    for bucket in buckets {
                        seen.extend_from_slice(bucket);
                        if seen.len() >= stop_after {
                            break;
                        }
                    }
                    seen
                },
            );
            assert_eq!(sorted, expected, "n = {n}");
            assert!(seen.len() <= n && sorted.starts_with(&seen), "n = {n}");
            if stop_after == usize::MAX {
                assert_eq!(seen.len(), n);
            }
        }
    }
}
