//! SLIC: simple linear iterative clustering.
//!
//! Achanta, R., Shaji, A., Smith, K., Lucchi, A., Fua, P. and Süsstrunk, S., *SLIC superpixels
//! compared to state-of-the-art superpixel methods*, TPAMI 34(11), 2012; with scikit-image's
//! `skimage.segmentation.slic` semantics (0.19–0.26) for 2-D images without a mask.

use ndarray::{Array2, ArrayView3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xai_models::simd::{dispatch, vectorize, Simd, WithSimd};

use super::{
    check_at_least, check_dims, check_image, check_rgb, color, gaussian, Buffers, Segmenter,
};
use crate::{Error, Result};

/// SLIC superpixels, as `skimage.segmentation.slic` (2-D, RGB or any channel count, no mask).
///
/// The image is scaled to [0, 1] by its global minimum and maximum, converted to Lab
/// (3 channels and `convert2lab` not `Some(false)`), optionally smoothed, and divided by
/// `compactness`. Cluster centres start on a regular grid of about `n_segments` points (with
/// colour 0) and k-means runs `max_num_iter` times, each centre searching a window of twice
/// the grid step. The distance is `(Δy² + Δx²)/step² + Σ(colour difference)²`; SLIC-zero
/// divides the colour part by each cluster's largest colour distance so far. Finally small
/// or disconnected pieces are merged into a neighbour (`enforce_connectivity`). Labels start
/// at `start_label` and are consecutive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slic {
    /// The approximate number of segments (grid points). At least 1.
    pub n_segments: usize,
    /// Balance of colour and space: larger gives more square segments. Positive.
    pub compactness: f64,
    /// The number of k-means iterations (scikit-image always runs them all). At least 1.
    pub max_num_iter: usize,
    /// σ of the Gaussian smoothing before segmenting; 0 for none.
    pub sigma: f64,
    /// Convert to Lab: `None` converts 3-channel images, `Some(true)` requires 3 channels,
    /// `Some(false)` never converts.
    pub convert2lab: Option<bool>,
    /// Merge disconnected and small pieces into a neighbouring segment.
    pub enforce_connectivity: bool,
    /// Pieces smaller than this fraction of the mean segment size are merged.
    pub min_size_factor: f64,
    /// The largest segment a piece may grow to, as a fraction of the mean segment size.
    pub max_size_factor: f64,
    /// SLIC-zero (SLICO): adapt the colour weight per cluster.
    pub slic_zero: bool,
    /// The first label: 0 or 1.
    pub start_label: i32,
}

impl Default for Slic {
    fn default() -> Self {
        Self {
            n_segments: 100,
            compactness: 10.0,
            max_num_iter: 10,
            sigma: 0.0,
            convert2lab: None,
            enforce_connectivity: true,
            min_size_factor: 0.5,
            max_size_factor: 3.0,
            slic_zero: false,
            start_label: 1,
        }
    }
}

impl Slic {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if self.n_segments == 0 {
            return Err(Error::param("n_segments", "must be at least 1, got 0"));
        }
        if !self.compactness.is_finite() || self.compactness <= 0.0 {
            return Err(Error::param(
                "compactness",
                format!("must be a finite number > 0, got {}", self.compactness),
            ));
        }
        if self.max_num_iter == 0 {
            return Err(Error::param("max_num_iter", "must be at least 1, got 0"));
        }
        check_at_least("sigma", self.sigma, 0.0)?;
        check_at_least("min_size_factor", self.min_size_factor, 0.0)?;
        if !self.max_size_factor.is_finite() || self.max_size_factor <= 0.0 {
            return Err(Error::param(
                "max_size_factor",
                format!("must be a finite number > 0, got {}", self.max_size_factor),
            ));
        }
        if !matches!(self.start_label, 0 | 1) {
            return Err(Error::param(
                "start_label",
                format!("must be 0 or 1, got {}", self.start_label),
            ));
        }
        Ok(())
    }
}

impl Segmenter for Slic {
    fn name(&self) -> &'static str {
        "slic"
    }

    fn segment(&self, image: ArrayView3<'_, f64>) -> Result<Array2<i32>> {
        super::on_worker(|| self.segment_screened(image, true))
    }
}

impl Slic {
    /// [`Segmenter::segment`], with the single precision screen of the assignment (see
    /// `Screen`) or, for the tests, without.
    fn segment_screened(&self, image: ArrayView3<'_, f64>, screen: bool) -> Result<Array2<i32>> {
        self.validate()?;
        check_dims(&image, "slic")?;
        let (h, w, ch) = image.dim();
        let lab = match self.convert2lab {
            Some(true) => {
                check_rgb(&image, "slic")?;
                true
            }
            None => ch == 3,
            Some(false) => false,
        };
        // One pass for the finite check, the global min-max scaling (scikit-image's, in place:
        // subtract, then divide) and the 8-bit levels the Lab conversion can use.
        let standard = image.as_standard_layout();
        let values = standard.as_slice().unwrap_or(&[]);
        let mut buffers = Buffers::take();
        let scan = color::scan_values(values, lab.then_some(&mut buffers.levels));
        if !scan.finite {
            // Names the first bad value.
            check_image(&image, "slic")?;
        }
        let (lo, hi) = (scan.lo, scan.hi);
        let scaled = |v: f64| {
            let v = v - lo;
            if hi != lo {
                v / (hi - lo)
            } else {
                v
            }
        };
        let levels = scan.levels.then_some(buffers.levels.as_slice());
        let ratio = 1.0 / self.compactness;
        let wp = padded_width(w);
        // The usual case, three channels without SLIC-zero, is screened in single precision
        // (twice the lanes): see `Screen`. The others compute every distance in double
        // precision.
        let screened = screen && ch == 3 && !self.slic_zero;
        let mut narrowed = None;
        match levels {
            // An 8-bit image: the scaled value, and so its gamma expansion, is a function of
            // the level alone, computed once per level instead of once per pixel.
            Some(levels) if self.sigma <= 0.0 => {
                let lin = level_table(scaled);
                let narrow =
                    screened.then(|| super::aligned_for_overwrite(&mut buffers.narrow, 3 * h * wp));
                let bound = color::levels_to_lab_planes(
                    levels,
                    (h, w),
                    &lin,
                    (wp, ratio),
                    &mut buffers.planes,
                    narrow,
                );
                narrowed = screened.then_some(bound);
            }
            levels => {
                let mut img = match levels {
                    Some(levels) => color::levels_to_lab(levels, (h, w), &level_table(scaled))?,
                    None if lab => color::rgb2lab(standard.mapv(scaled).view())?,
                    None => standard.mapv(scaled),
                };
                if self.sigma > 0.0 {
                    // scikit-image filters the (1, H, W, C) volume: the singleton z axis first.
                    gaussian::filter_singleton_axis(&mut img, self.sigma);
                    gaussian::filter_axis(&mut img, Axis(0), self.sigma);
                    gaussian::filter_axis(&mut img, Axis(1), self.sigma);
                }
                let data = img.as_slice().unwrap_or(&[]);
                padded_planes(data, (h, w, ch), (wp, ratio), &mut buffers.planes);
            }
        }

        // Grid of initial centres on the (1, H, W) volume.
        let grid = regular_grid([1, h, w], self.n_segments);
        let mut centres: Vec<f64> = Vec::new();
        let nf = 3 + ch;
        for y in (grid.start[1]..h).step_by(grid.step[1]) {
            for x in (grid.start[2]..w).step_by(grid.step[2]) {
                centres.extend([0.0, y as f64, x as f64]);
                centres.extend(std::iter::repeat_n(0.0, ch));
            }
        }
        let k = centres.len() / nf;
        let step = grid.step.iter().copied().max().unwrap_or(1) as f64;
        let spatial_weight = 1.0 / (step * step);
        let win = regular_grid([1, h, w], k);
        let (wy, wx) = (2.0 * win.step[1] as f64, 2.0 * win.step[2] as f64);

        let labels = kmeans(
            &mut buffers,
            (h, w, wp),
            &centres,
            (wy, wx),
            spatial_weight,
            self.max_num_iter,
            self.slic_zero,
            (screened, narrowed),
        );
        // In place: a new array of this size is fresh memory, whose first touch costs a page
        // fault every 4 KiB.
        let mut out = labels;
        for label in out.iter_mut() {
            *label = if *label < 0 {
                -1
            } else {
                *label + self.start_label
            };
        }
        if self.enforce_connectivity {
            let seg = (h * w) as f64 / k as f64;
            let min_size = (self.min_size_factor * seg) as usize;
            let max_size = ((self.max_size_factor * seg) as usize).max(1);
            enforce_connectivity(
                &mut out,
                (h, w),
                (min_size, max_size),
                self.start_label,
                [
                    &mut buffers.framed,
                    &mut buffers.framed_out,
                    &mut buffers.framed_band,
                ],
            );
        }
        buffers.give_back();
        Array2::from_shape_vec((h, w), out)
            .map_err(|e| Error::Data(format!("slic: internal shape error: {e}")))
    }
}

/// scikit-image's `regular_grid` for a 3-D shape: per axis the first index and the step.
struct Grid {
    start: [usize; 3],
    step: [usize; 3],
}

fn regular_grid(shape: [usize; 3], n_points: usize) -> Grid {
    let size: f64 = shape.iter().map(|&d| d as f64).product();
    let n = n_points as f64;
    if size <= n {
        return Grid {
            start: [0; 3],
            step: [1; 3],
        };
    }
    // Axes sorted by length (a stable order for equal lengths).
    let mut order = [0usize, 1, 2];
    order.sort_by_key(|&a| shape[a]);
    let sorted: Vec<f64> = order.iter().map(|&a| shape[a] as f64).collect();
    let mut steps = [(size / n).powf(1.0 / 3.0); 3];
    if sorted.iter().zip(&steps).any(|(d, s)| d < s) {
        for dim in 0..3 {
            steps[dim] = sorted[dim];
            let rest: f64 = sorted[dim + 1..].iter().product();
            let remaining = 3 - dim - 1;
            if remaining > 0 {
                let s = (rest / n).powf(1.0 / remaining as f64);
                for st in steps.iter_mut().skip(dim + 1) {
                    *st = s;
                }
            }
            if sorted.iter().zip(&steps).all(|(d, s)| d >= s) {
                break;
            }
        }
    }
    let mut grid = Grid {
        start: [0; 3],
        step: [1; 3],
    };
    for (i, &axis) in order.iter().enumerate() {
        grid.start[axis] = (steps[i] / 2.0).floor() as usize;
        grid.step[axis] = (steps[i].round_ties_even() as usize).max(1);
    }
    grid
}

/// Pixels in one column tile of the single precision assignment (16 `f32`: one AVX-512
/// vector, two AVX2 ones), and the chunk of the double precision one, where every window row
/// is processed in aligned chunks of this many pixels so that successive clusters' loads and
/// stores of a pixel's distance meet at the same addresses (unaligned overlaps would defeat
/// store forwarding).
const LANES: usize = 16;

/// Rows padded to whole chunks of [`LANES`]; padding pixels are never inside a window.
fn padded_width(w: usize) -> usize {
    w.div_ceil(LANES) * LANES
}

/// The gamma expansion of each 8-bit level after the min–max `scaled`.
fn level_table(scaled: impl Fn(f64) -> f64) -> [f64; 256] {
    std::array::from_fn(|n| color::gamma_expand(scaled(n as f64 * (1.0 / 255.0))))
}

/// The channels of an interleaved `(h, w, ch)` image, times `ratio`, into `planes`: `ch`
/// planes of `h` rows of `wp` values (zero past `w`; their memory is reused).
fn padded_planes(
    data: &[f64],
    (h, w, ch): (usize, usize, usize),
    (wp, ratio): (usize, f64),
    planes: &mut Vec<Vec<f64>>,
) {
    planes.resize_with(ch, Vec::new);
    planes.truncate(ch);
    for (c, plane) in planes.iter_mut().enumerate() {
        plane.clear();
        plane.resize(h * wp, 0.0);
        for (row, src) in plane.chunks_exact_mut(wp).zip(data.chunks_exact(w * ch)) {
            for (o, px) in row.iter_mut().zip(src.chunks_exact(ch)) {
                *o = px[c] * ratio;
            }
        }
    }
}

/// The k-means iterations on the (scaled, padded) planes of `buffers`, from the centres
/// `initial`; returns each pixel's cluster (−1 if never assigned). With `screened`, the
/// assignment is screened in single precision (three channels only), on `buffers.narrow`;
/// with `narrowed`, the caller has already filled those planes and gives the planes' largest
/// magnitude.
///
/// The iterations run on every thread of the pool at once, phase by phase ([`Phases`]):
/// each thread keeps its own copy of the centres, all equal, and the threads share the label
/// map and each update's sums.
#[allow(clippy::too_many_arguments)]
fn kmeans(
    buffers: &mut Buffers,
    (h, w, wp): (usize, usize, usize),
    initial: &[f64],
    window: (f64, f64),
    spatial_weight: f64,
    iters: usize,
    slic_zero: bool,
    (screened, narrowed): (bool, Option<f64>),
) -> Vec<i32> {
    let Buffers {
        planes,
        dist,
        nearest,
        narrow,
        ..
    } = buffers;
    let planes: &[Vec<f64>] = planes;
    let ch = planes.len();
    let nf = 3 + ch;
    let k = initial.len() / nf;
    let nearest = super::aligned_for_overwrite(nearest, h * wp);
    nearest.fill(-1);
    let screened = screened && ch == 3;
    let mut plane_bound = narrowed.unwrap_or(0.0);
    let (narrow, dist): (&[f32], &mut [f64]) = if screened {
        let narrow = super::aligned_for_overwrite(narrow, ch * h * wp);
        // Unless the Lab conversion already wrote them.
        if narrowed.is_none() {
            for (plane, out) in planes.iter().zip(narrow.chunks_exact_mut(h * wp)) {
                let bound = out
                    .par_chunks_mut(1 << 14)
                    .zip(plane.par_chunks(1 << 14))
                    .map(|(out, plane)| {
                        vectorize(
                            #[inline(always)]
                            || color::narrow_with_bound(plane, out),
                        )
                    })
                    .reduce(|| 0.0, f64::max);
                plane_bound = plane_bound.max(bound);
            }
        }
        (narrow, &mut [])
    } else {
        super::resize_for_overwrite(dist, h * wp);
        (&[], dist.as_mut_slice())
    };
    let threads = rayon::current_num_threads().max(1);
    let run = KMeans {
        planes: planes.iter().map(Vec::as_slice).collect(),
        narrow,
        plane_bound,
        size: (h, w, wp),
        window,
        spatial_weight,
        iters,
        slic_zero,
        screened,
        // The three-channel update runs one group of clusters per thread; the others in one.
        groups: if ch == 3 {
            threads.clamp(1, k.max(1))
        } else {
            1
        },
    };
    let block_len = wp * BLOCK_ROWS;
    let mut dist_blocks = dist.chunks_mut(block_len);
    let shared = Shared {
        blocks: nearest
            .chunks_mut(block_len)
            .map(|near| {
                let dist = dist_blocks.next().unwrap_or_default();
                std::sync::RwLock::new(LabelBlock { near, dist })
            })
            .collect(),
        phases: Phases::new(3 * iters),
        sums: (0..iters * run.groups)
            .map(|_| std::sync::OnceLock::new())
            .collect(),
        max_colours: (0..iters).map(|_| std::sync::OnceLock::new()).collect(),
        finished: std::sync::atomic::AtomicBool::new(false),
    };
    rayon::scope(|s| {
        for _ in 1..threads {
            s.spawn(|_| run.take_part(&shared, initial));
        }
        run.take_part(&shared, initial);
    });
    drop(shared);
    // Row by row: a flattening iterator would not know the length, and grow the array.
    let mut labels = Vec::with_capacity(h * w);
    for row in nearest.chunks_exact(wp) {
        labels.extend_from_slice(&row[..w]);
    }
    labels
}

/// A cluster's window: rows `y0..y1` and columns `x0..x1`, as `(y0, y1, x0, x1)`; `None` for
/// an empty cluster, or a window with no column in the image.
type Window = Option<(usize, usize, usize, usize)>;

/// What every thread of [`kmeans`] reads.
struct KMeans<'a> {
    planes: Vec<&'a [f64]>,
    narrow: &'a [f32],
    /// The largest magnitude in `planes`.
    plane_bound: f64,
    /// Rows, columns, padded columns.
    size: (usize, usize, usize),
    /// The half height and half width of a cluster's window.
    window: (f64, f64),
    spatial_weight: f64,
    iters: usize,
    slic_zero: bool,
    screened: bool,
    /// Groups of clusters in an update, each summed by one thread.
    groups: usize,
}

/// What the threads of [`kmeans`] share: the label map, in blocks of [`BLOCK_ROWS`] rows
/// (each assigned by one thread and then read by all), and the results of each iteration's
/// update, written once.
struct Shared<'a> {
    blocks: Vec<std::sync::RwLock<LabelBlock<'a>>>,
    phases: Phases,
    /// Iteration by iteration, each group's sums.
    sums: Vec<std::sync::OnceLock<GroupSums>>,
    /// Iteration by iteration, SLIC-zero's largest colour distance of each cluster.
    max_colours: Vec<std::sync::OnceLock<Vec<f64>>>,
    /// Set by the first thread through every phase: one starting later has nothing to do.
    finished: std::sync::atomic::AtomicBool,
}

/// [`BLOCK_ROWS`] padded rows of the label map, and of the double precision distances when
/// the assignment is not screened (else empty).
struct LabelBlock<'a> {
    near: &'a mut [i32],
    dist: &'a mut [f64],
}

impl Shared<'_> {
    /// Calls `f(y, labels)` for each row `y` of `rows` in order, with the row's `w` labels.
    fn for_rows(
        &self,
        rows: std::ops::Range<usize>,
        (w, wp): (usize, usize),
        mut f: impl FnMut(usize, &[i32]),
    ) {
        if rows.is_empty() {
            return;
        }
        for b in rows.start / BLOCK_ROWS..=(rows.end - 1) / BLOCK_ROWS {
            let Some(block) = self.blocks.get(b) else {
                return;
            };
            let block = block.read().unwrap_or_else(|e| e.into_inner());
            let y0 = b * BLOCK_ROWS;
            for y in rows.start.max(y0)..rows.end.min(y0 + BLOCK_ROWS) {
                let first = (y - y0) * wp;
                if let Some(row) = block.near.get(first..first + w) {
                    f(y, row);
                }
            }
        }
    }
}

/// Work split into phases that run one after the other on several threads without forking
/// and joining in between: a phase is a number of units, each claimed by whichever thread
/// asks first, and a thread leaves a phase when all its units are done. A thread that starts
/// late, or never, leaves more units to the others, so no thread waits on one that is not
/// running; and a fork and join per phase, each waking a sleeping thread, cost more than a
/// phase of SLIC's small images takes.
struct Phases {
    claimed: Vec<std::sync::atomic::AtomicUsize>,
    done: Vec<std::sync::atomic::AtomicUsize>,
}

impl Phases {
    fn new(n: usize) -> Self {
        let counters = || {
            (0..n)
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect()
        };
        Self {
            claimed: counters(),
            done: counters(),
        }
    }

    /// Does units of `phase` (of `units`) with `work` until none is left, then waits until
    /// every unit is done, by this thread or another.
    fn run(&self, phase: usize, units: usize, mut work: impl FnMut(usize)) {
        use std::sync::atomic::Ordering;
        let (Some(claimed), Some(done)) = (self.claimed.get(phase), self.done.get(phase)) else {
            return;
        };
        /// Counts a unit done even if its work panics, so that no thread waits for it forever
        /// (the panic then reaches the caller of the pool's scope).
        struct Done<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Release);
            }
        }
        loop {
            let unit = claimed.fetch_add(1, Ordering::Relaxed);
            if unit >= units {
                break;
            }
            let _done = Done(done);
            work(unit);
        }
        spin_until(|| (done.load(Ordering::Acquire) >= units).then_some(()));
    }
}

/// Waits until `ready` gives a value, and returns it: for what another thread finishes within
/// microseconds, so spun for first, giving the core away only after that long.
fn spin_until<T>(ready: impl Fn() -> Option<T>) -> T {
    let mut spins = 0u32;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        if spins < 1 << 6 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// One update's sums over a group of clusters, from `first` on: pixels, their rows and
/// columns, and their colours (`ch` per cluster), each summed in raster order.
struct GroupSums {
    first: usize,
    count: Vec<u64>,
    yx: Vec<(u64, u64)>,
    colour: Vec<f64>,
}

impl GroupSums {
    /// The group's means of position and colour into `centres` (`nf` values per cluster).
    fn write_means(&self, centres: &mut [f64], nf: usize) {
        let ch = nf - 3;
        for (i, &n) in self.count.iter().enumerate() {
            let c = self.first + i;
            let n = n as f64;
            let cen = &mut centres[c * nf..(c + 1) * nf];
            // 0/0 = NaN: an empty cluster never wins again.
            cen[0] = 0.0 / n;
            cen[1] = self.yx[i].0 as f64 / n;
            cen[2] = self.yx[i].1 as f64 / n;
            for (v, &sum) in cen[3..].iter_mut().zip(&self.colour[i * ch..(i + 1) * ch]) {
                *v = sum / n;
            }
        }
    }
}

impl KMeans<'_> {
    /// One thread's part of the iterations.
    fn take_part(&self, shared: &Shared<'_>, initial: &[f64]) {
        use std::sync::atomic::Ordering;
        if shared.finished.load(Ordering::Acquire) {
            return;
        }
        let (h, w, wp) = self.size;
        let ch = self.planes.len();
        let nf = 3 + ch;
        let k = initial.len() / nf;
        let mut centres = initial.to_vec();
        let mut max_color = vec![1.0f64; k];
        let mut labelled_rows = vec![(h, 0usize); k];
        let mut covering = Vec::new();
        let mut scratch = AssignScratch::default();
        let mut buf: Vec<f64> = Vec::new();
        let xf: Vec<f64> = (0..wp).map(|x| x as f64).collect();
        for iteration in 0..self.iters {
            let boxes = self.windows(&centres);
            // A pixel keeps its label while no window covers it, so a cluster's pixels lie in
            // the rows its windows have covered in any iteration so far.
            for (rows, b) in labelled_rows.iter_mut().zip(&boxes) {
                if let Some((y0, y1, _, _)) = *b {
                    *rows = (rows.0.min(y0), rows.1.max(y1));
                }
            }
            // Assignment, block by block of rows. Each pixel sees the clusters in order, as
            // in scikit-image.
            let phase = 3 * iteration;
            let blocks = shared.blocks.len();
            let covering_rows = |covering: &mut Vec<usize>, y0: usize, y1: usize| {
                covering.clear();
                covering.extend(boxes.iter().enumerate().filter_map(|(c, b)| match *b {
                    Some((cy0, cy1, _, _)) if cy0 < y1 && y0 < cy1 => Some(c),
                    _ => None,
                }));
            };
            if self.screened {
                let colour_bound = centres
                    .chunks_exact(nf)
                    .flat_map(|cen| &cen[3..])
                    .filter(|v| !v.is_nan())
                    .fold(self.plane_bound, |m, v| m.max(v.abs()));
                let screen = Screen {
                    spatial_only: spatial_decides(
                        &centres,
                        &boxes,
                        (h, w),
                        self.spatial_weight,
                        colour_bound,
                    ),
                    planes: [self.planes[0], self.planes[1], self.planes[2]],
                    narrow: self.narrow,
                    plane_len: h * wp,
                    wp,
                    boxes: &boxes,
                    centres: &centres,
                    spatial_weight: self.spatial_weight,
                    gap: Gap::new(colour_bound, h.max(w) as f64, self.spatial_weight),
                };
                shared.phases.run(phase, blocks, |b| {
                    let mut block = shared.blocks[b].write().unwrap_or_else(|e| e.into_inner());
                    let y0 = b * BLOCK_ROWS;
                    covering_rows(&mut covering, y0, y0 + block.near.len() / wp);
                    screen.assign_rows(y0, block.near, &covering, &mut scratch);
                });
            } else {
                shared.phases.run(phase, blocks, |b| {
                    let mut block = shared.blocks[b].write().unwrap_or_else(|e| e.into_inner());
                    let LabelBlock { near, dist } = &mut *block;
                    dist.fill(f64::MAX);
                    let y0 = b * BLOCK_ROWS;
                    for (r, (near_row, dist_row)) in near
                        .chunks_exact_mut(wp)
                        .zip(dist.chunks_exact_mut(wp))
                        .enumerate()
                    {
                        self.assign_row_exactly(
                            y0 + r,
                            (near_row, dist_row),
                            (&centres, &boxes, &max_color),
                            (&xf, &mut buf),
                        );
                    }
                });
            }
            // The labels are the last assignment's: the centres it would give are never used.
            if iteration + 1 == self.iters {
                break;
            }
            let sums = &shared.sums[iteration * self.groups..(iteration + 1) * self.groups];
            shared.phases.run(phase + 1, self.groups, |g| {
                // Set once: this thread alone claimed the unit.
                let _ = sums[g].set(self.group_sums(shared, g, k, &labelled_rows));
            });
            for group in sums.iter().filter_map(std::sync::OnceLock::get) {
                group.write_means(&mut centres, nf);
            }
            if self.slic_zero {
                let slot = &shared.max_colours[iteration];
                shared.phases.run(phase + 2, 1, |_| {
                    let mut grown = max_color.clone();
                    shared.for_rows(0..h, (w, wp), |y, row| {
                        for (x, &l) in row.iter().enumerate() {
                            if l < 0 {
                                continue;
                            }
                            let c = l as usize;
                            let mut dc = 0.0;
                            for (plane, m) in
                                self.planes.iter().zip(&centres[c * nf + 3..(c + 1) * nf])
                            {
                                let t = plane[y * wp + x] - m;
                                dc += t * t;
                            }
                            if grown[c] < dc {
                                grown[c] = dc;
                            }
                        }
                    });
                    let _ = slot.set(grown);
                });
                if let Some(grown) = slot.get() {
                    max_color.clone_from(grown);
                }
            }
        }
        shared.finished.store(true, Ordering::Release);
    }

    /// Each cluster's window around its centre (`centres`: z, y, x and colours per cluster).
    fn windows(&self, centres: &[f64]) -> Vec<Window> {
        let (h, w, _) = self.size;
        let (wy, wx) = self.window;
        let nf = 3 + self.planes.len();
        centres
            .chunks_exact(nf)
            .map(|cen| {
                let (cy, cx) = (cen[1], cen[2]);
                if cy.is_nan() || cx.is_nan() {
                    return None;
                }
                let y0 = (cy - wy).max(0.0) as usize;
                let y1 = (cy + wy + 1.0).min(h as f64) as usize;
                let x0 = (cx - wx).max(0.0) as usize;
                let x1 = (cx + wx + 1.0).min(w as f64) as usize;
                (x0 < x1).then_some((y0, y1, x0, x1))
            })
            .collect()
    }

    /// The double precision assignment of row `y` (the unscreened one): relaxes `near_row`'s
    /// labels and `dist_row`'s distances with every cluster whose window covers the row.
    fn assign_row_exactly(
        &self,
        y: usize,
        (near_row, dist_row): (&mut [i32], &mut [f64]),
        (centres, boxes, max_color): (&[f64], &[Window], &[f64]),
        (xf, buf): (&[f64], &mut Vec<f64>),
    ) {
        let wp = self.size.2;
        let nf = 3 + self.planes.len();
        vectorize(
            #[inline(always)]
            || {
                let rows: Vec<&[f64]> = self
                    .planes
                    .iter()
                    .map(|p| &p[y * wp..(y + 1) * wp])
                    .collect();
                for (c, b) in boxes.iter().enumerate() {
                    let Some((y0, y1, x0, x1)) = *b else { continue };
                    if y < y0 || y >= y1 {
                        continue;
                    }
                    let cen = &centres[c * nf..(c + 1) * nf];
                    let colour_scale = self.slic_zero.then_some(max_color[c]);
                    let distance = Distance::new(cen, y, self.spatial_weight, colour_scale);
                    let (x0f, x1f) = (x0 as f64, x1 as f64);
                    let label = c as i32;
                    let span = x0 / LANES * LANES..x1.div_ceil(LANES) * LANES;
                    // Colour distances of the window row, channel by channel.
                    buf.clear();
                    buf.resize(span.len(), 0.0);
                    for (row, &m) in rows.iter().zip(&cen[3..]) {
                        for (o, v) in buf.iter_mut().zip(&row[span.clone()]) {
                            let t = v - m;
                            *o += t * t;
                        }
                    }
                    for (((&dc, &x), d_old), n_old) in buf
                        .iter()
                        .zip(&xf[span.clone()])
                        .zip(dist_row[span.clone()].iter_mut())
                        .zip(near_row[span].iter_mut())
                    {
                        let inside = (x >= x0f) & (x < x1f);
                        relax(inside, distance.of(dc, x), label, d_old, n_old);
                    }
                }
            },
        )
    }

    /// Group `g`'s sums, for the update: means of position and colour. Positions are
    /// integers, whose sums are exact in any order (far below 2⁵³); colours are summed per
    /// cluster in raster order, as scikit-image does.
    fn group_sums(
        &self,
        shared: &Shared<'_>,
        g: usize,
        k: usize,
        labelled_rows: &[(usize, usize)],
    ) -> GroupSums {
        let (h, w, wp) = self.size;
        let ch = self.planes.len();
        let (c0, c1) = (g * k / self.groups, (g + 1) * k / self.groups);
        let mut out = GroupSums {
            first: c0,
            count: vec![0; c1 - c0],
            yx: vec![(0, 0); c1 - c0],
            colour: vec![0.0; (c1 - c0) * ch],
        };
        if let [p0, p1, p2] = self.planes[..] {
            // One pass, each cluster's sums in one cache line. Every pixel adds to its
            // cluster's sums in memory, with no branch at the end of a run of equal labels:
            // runs are short (about 5 pixels on a photo), and that branch is mispredicted.
            // Pixels of other groups' clusters, in long stretches, are passed over.
            #[derive(Clone, Copy, Default)]
            struct Sums {
                colour: [f64; 3],
                count: u64,
                y: u64,
                x: u64,
            }
            // The rows the group's clusters' windows have covered: every cluster is still
            // summed in raster order.
            let rows = labelled_rows[c0..c1]
                .iter()
                .fold((h, 0), |(a, b), &(y0, y1)| (a.min(y0), b.max(y1)));
            let mut sums = vec![Sums::default(); c1 - c0];
            shared.for_rows(rows.0..rows.1.max(rows.0), (w, wp), |y, row| {
                let r = y * wp..y * wp + w;
                for ((((&l, &v0), &v1), &v2), x) in row
                    .iter()
                    .zip(&p0[r.clone()])
                    .zip(&p1[r.clone()])
                    .zip(&p2[r])
                    .zip(0u64..)
                {
                    let Some(s) = (l as usize).checked_sub(c0).and_then(|i| sums.get_mut(i)) else {
                        continue;
                    };
                    s.colour[0] += v0;
                    s.colour[1] += v1;
                    s.colour[2] += v2;
                    s.count += 1;
                    s.y += y as u64;
                    s.x += x;
                }
            });
            for (i, s) in sums.iter().enumerate() {
                out.colour[i * 3..i * 3 + 3].copy_from_slice(&s.colour);
                out.count[i] = s.count;
                out.yx[i] = (s.y, s.x);
            }
        } else {
            shared.for_rows(0..h, (w, wp), |y, row| {
                for (x, &l) in row.iter().enumerate() {
                    // Unassigned pixels (−1) and other groups' clusters.
                    let Some(i) = (l as usize).checked_sub(c0).filter(|&i| i < c1 - c0) else {
                        continue;
                    };
                    out.count[i] += 1;
                    out.yx[i].0 += y as u64;
                    out.yx[i].1 += x as u64;
                    for (m, plane) in out.colour[i * ch..(i + 1) * ch]
                        .iter_mut()
                        .zip(&self.planes)
                    {
                        *m += plane[y * wp + x];
                    }
                }
            });
        }
        out
    }
}

/// One cluster's distance to the pixels of one window row: the spatial part from the centre's
/// row offset (`dzy`) and column, plus the colour part (divided by the cluster's largest colour
/// distance for SLIC-zero).
#[derive(Clone, Copy)]
struct Distance {
    dzy: f64,
    cx: f64,
    spatial_weight: f64,
    colour_scale: Option<f64>,
}

impl Distance {
    /// The distance of the cluster centred at `cen` (z, y, x, colours…) to the pixels of row
    /// `y`.
    fn new(cen: &[f64], y: usize, spatial_weight: f64, colour_scale: Option<f64>) -> Self {
        let (cz, cy, cx) = (cen[0], cen[1], cen[2]);
        let dz = cz * cz; // z = 0
        let ty = cy - y as f64;
        Self {
            dzy: dz + ty * ty,
            cx,
            spatial_weight,
            colour_scale,
        }
    }

    #[inline(always)]
    fn of(self, colour: f64, x: f64) -> f64 {
        let tx = self.cx - x;
        let d = (self.dzy + tx * tx) * self.spatial_weight;
        match self.colour_scale {
            Some(m) => d + colour / m,
            None => d + colour,
        }
    }
}

/// Keeps the nearer of a pixel's current cluster and `label` at distance `d` (a strict
/// comparison, so the first cluster wins ties, as in scikit-image) where the pixel is
/// `inside` the cluster's window, without branches.
#[inline(always)]
fn relax(inside: bool, d: f64, label: i32, d_old: &mut f64, n_old: &mut i32) {
    let closer = inside & (*d_old > d);
    *d_old = if closer { d } else { *d_old };
    *n_old = if closer { label } else { *n_old };
}

/// The three-channel assignment in single precision, exact all the same.
///
/// Each pixel's nearest cluster is the first, in cluster order, at the smallest distance
/// computed in double precision; the order of the visits does not matter. A distance d
/// computed in single precision is within [`Gap::error`]`(d)` of the double precision one.
/// So where the second nearest single precision distance exceeds the nearest by more than
/// twice that error at the second's distance, the nearest is the exact answer; only the
/// other pixels need the double precision distances: under 1 % on photos, most of them exact
/// ties in the first iteration, where every centre's colour is 0 and pixels halfway between
/// two grid points are equally far from both.
struct Screen<'a> {
    /// The three planes.
    planes: [&'a [f64]; 3],
    /// The same, as `f32`, one after the other.
    narrow: &'a [f32],
    plane_len: usize,
    /// The padded width.
    wp: usize,
    boxes: &'a [Window],
    centres: &'a [f64],
    spatial_weight: f64,
    gap: Gap,
    /// Whether the spatial distances alone decide, exactly in single precision (see
    /// [`spatial_decides`]): the first iteration, where the screen would leave the many
    /// pixels at equal distances from two grid points undecided.
    spatial_only: bool,
}

/// Whether the nearest cluster of every pixel is the first, in order, at the smallest
/// Δy² + Δx² = P, an integer computed exactly in single precision: true when every cluster
/// with a window has the same colour and an integral position (the first iteration's grid
/// points and colour 0) on an image of at most 2048 rows and columns (P < 2²³).
///
/// Then every cluster's double precision distance to a pixel is d = (P·w) + C, with the same
/// colour part C, each operation rounded. Both roundings grow with P, so equal P give equal d;
/// and P grows by at least 1 from one value to the next, so d grows strictly as long as the
/// weight w exceeds the two roundings, at most 2·ulp(d) together: checked against a bound on d
/// (P ≤ h² + w², C ≤ 3·(2·`colour_bound`)²) with a factor of 2 to spare.
fn spatial_decides(
    centres: &[f64],
    boxes: &[Window],
    (h, w): (usize, usize),
    spatial_weight: f64,
    colour_bound: f64,
) -> bool {
    if h.max(w) > 2048 {
        return false;
    }
    let mut windowed = centres
        .chunks_exact(6)
        .zip(boxes)
        .filter_map(|(cen, b)| b.map(|_| cen));
    let Some(first) = windowed.clone().next() else {
        return false;
    };
    let alike = |cen: &[f64]| {
        let colour = cen[3..].iter().zip(&first[3..]);
        let integral = cen[1].fract() == 0.0 && cen[2].fract() == 0.0;
        cen[0] == 0.0 && integral && colour.into_iter().all(|(a, b)| a.to_bits() == b.to_bits())
    };
    let largest = (h * h + w * w) as f64 * spatial_weight + 12.0 * colour_bound * colour_bound;
    windowed.all(alike) && spatial_weight > 4.0 * (largest + 1.0) * f64::EPSILON
}

/// The bound on single precision rounding of [`Screen`]: error(d) = u·(a·√d + 7d).
#[derive(Clone, Copy)]
struct Gap {
    /// u·a.
    sqrt_term: f32,
    /// 7u.
    linear_term: f32,
}

impl Gap {
    /// Where every colour value (pixel or centre) is at most `colour_bound` (V) in magnitude
    /// and every coordinate at most `extent` (L), with spatial weight w.
    ///
    /// With u = 2⁻²⁴, a colour difference t = v − m, both rounded and then subtracted, is
    /// off by at most 2uV + u|t|, so t² is off by at most 4uV|t| + 3ut²; summing three adds
    /// two roundings, and Σ|t| ≤ √(3C): the colour part C is off by at most
    /// 4uV·√(3C) + 5uC. Likewise Δy² + Δx² = P is off by at most 2uL·√(2P) + 4uP, and the
    /// spatial part S = wP, after the rounded weight and the product, by 2uL·√(2wS) + 6uS.
    /// With the final sum's rounding and C, S ≤ d: error(d) ≤ u·((4√3·V + 2√2·L·√w)·√d + 7d).
    /// Double precision errors are 2²⁹ times smaller; [`Self::clear`] takes twice the sum of
    /// two errors for them and for its own rounding.
    fn new(colour_bound: f64, extent: f64, spatial_weight: f64) -> Self {
        let u = f64::from(f32::EPSILON) / 2.0;
        let a =
            4.0 * 3f64.sqrt() * colour_bound + 2.0 * 2f64.sqrt() * extent * spatial_weight.sqrt();
        Self {
            sqrt_term: (u * a) as f32,
            linear_term: (7.0 * u) as f32,
        }
    }

    /// The bound on the rounding error of a single precision distance `d`.
    #[inline(always)]
    fn error(self, d: f32) -> f32 {
        self.sqrt_term * d.sqrt() + self.linear_term * d
    }

    /// Whether the nearest single precision distance `best` and the second nearest `second`
    /// are far enough apart for the nearest to be the exact one (also when there is no
    /// second).
    #[inline(always)]
    fn clear(self, best: f32, second: f32) -> bool {
        second == f32::INFINITY || second - best > 4.0 * self.error(second)
    }

    /// [`Self::clear`] lane by lane, with the same operations.
    #[inline(always)]
    fn clear_lanes<S: Simd>(self, simd: S, best: S::f32s, second: S::f32s) -> S::m32s {
        let error = simd.add_f32s(
            simd.mul_f32s(simd.splat_f32s(self.sqrt_term), simd.sqrt_f32s(second)),
            simd.mul_f32s(simd.splat_f32s(self.linear_term), second),
        );
        simd.or_m32s(
            simd.equal_f32s(second, simd.splat_f32s(f32::INFINITY)),
            simd.greater_than_f32s(
                simd.sub_f32s(second, best),
                simd.mul_f32s(simd.splat_f32s(4.0), error),
            ),
        )
    }
}

impl Screen<'_> {
    /// The nearest clusters of the rows from `y0` on (at most [`BLOCK_ROWS`]) into `near`
    /// (whole padded rows; untouched where no window covers a pixel). `covering` lists the
    /// clusters whose windows meet these rows, in order; `scratch` is reused space. See
    /// [`AssignRows`].
    fn assign_rows(
        &self,
        y0: usize,
        near: &mut [i32],
        covering: &[usize],
        scratch: &mut AssignScratch,
    ) {
        let op = AssignRows {
            screen: self,
            y0,
            near,
            covering,
            scratch,
        };
        #[cfg(test)]
        if let Some(run) = *tests::FORCED_SIMD.lock().unwrap_or_else(|e| e.into_inner()) {
            return run(op);
        }
        dispatch(op);
    }
}

/// Rows of [`Screen::assign_rows`] at a time.
const BLOCK_ROWS: usize = 16;

/// Reused space of [`AssignRows`].
#[derive(Default)]
struct AssignScratch {
    /// The clusters whose windows meet the block's rows, in order.
    block: Vec<BlockCluster>,
    /// Those whose windows also meet a tile's columns, in order.
    tile: Vec<TileCluster>,
}

/// [`Screen::assign_rows`] in explicit SIMD.
///
/// The rows are taken in tiles of [`LANES`] columns: each vector of pixels keeps its nearest
/// and second nearest single precision distances and its label in registers while the
/// clusters covering it pass by, in order. So a pixel's colour is loaded once rather than
/// once per cluster, and only its label is stored. The spatial part of a distance is the sum
/// of a row term and a column term ([`BlockCluster`]), computed once per block and tile, and
/// copied beside the cluster's colour so that the inner loop reads one small record per
/// cluster.
struct AssignRows<'s, 'b> {
    screen: &'b Screen<'s>,
    y0: usize,
    near: &'b mut [i32],
    covering: &'b [usize],
    scratch: &'b mut AssignScratch,
}

/// A cluster as [`AssignRows`] reads it: the spatial terms of its distance to a tile of
/// [`BLOCK_ROWS`] × [`LANES`] pixels (∞ outside its window), its colour and its label.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct TileCluster {
    column_terms: [f32; LANES],
    row_terms: [f32; BLOCK_ROWS],
    colour: [f32; 3],
    label: i32,
}

impl TileCluster {
    /// The spatial distance (Δz² + Δy² + Δx², unweighted) to the `j`-th vector of pixels of
    /// the tile's row `r`, ∞ in lanes outside the window; `None` where the window misses the
    /// row.
    #[inline(always)]
    fn spatial<S: Simd>(&self, simd: S, r: usize, j: usize) -> Option<S::f32s> {
        let row_term = self.row_terms[r];
        (row_term != f32::INFINITY).then(|| {
            simd.add_f32s(
                S::as_simd_f32s(&self.column_terms).0[j],
                simd.splat_f32s(row_term),
            )
        })
    }
}

impl WithSimd for AssignRows<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            screen,
            y0,
            near,
            covering,
            scratch,
        } = self;
        let AssignScratch { block, tile } = scratch;
        let wp = screen.wp;
        let rows = (near.len() / wp).min(BLOCK_ROWS);
        let pixels = y0 * wp..(y0 + rows) * wp;
        let plane = |c: usize| &screen.narrow[c * screen.plane_len..][pixels.clone()];
        let (p0, p1, p2) = (plane(0), plane(1), plane(2));
        let gap = screen.gap;
        block.clear();
        block.extend(covering.iter().filter_map(|&c| {
            let bounds = screen.boxes[c]?;
            let cen = &screen.centres[c * 6..(c + 1) * 6];
            Some(BlockCluster::new(cen, bounds, c, y0..y0 + rows))
        }));
        let weight = simd.splat_f32s(screen.spatial_weight as f32);
        let infinity = simd.splat_f32s(f32::INFINITY);
        for x_lo in (0..wp).step_by(LANES) {
            let mut columns = [0f32; LANES];
            for (l, column) in columns.iter_mut().enumerate() {
                *column = (x_lo + l) as f32;
            }
            let (xs, _) = S::as_simd_f32s(&columns);
            tile.clear();
            for cluster in block.iter() {
                let (x0, x1) = cluster.columns;
                if x1 <= x_lo || x_lo + LANES <= x0 {
                    continue;
                }
                let mut entry = TileCluster {
                    column_terms: [0.0; LANES],
                    row_terms: cluster.row_terms,
                    colour: cluster.colour,
                    label: cluster.index as i32,
                };
                // As `BlockCluster::column_term`.
                let (x0f, x1f) = (simd.splat_f32s(x0 as f32), simd.splat_f32s(x1 as f32));
                let cx = simd.splat_f32s(cluster.cx);
                let (terms, _) = S::as_mut_simd_f32s(&mut entry.column_terms);
                for (term, &x) in terms.iter_mut().zip(xs) {
                    let tx = simd.sub_f32s(cx, x);
                    let inside = simd.and_m32s(
                        simd.greater_than_or_equal_f32s(x, x0f),
                        simd.less_than_f32s(x, x1f),
                    );
                    *term = simd.select_f32s(inside, simd.mul_f32s(tx, tx), infinity);
                }
                tile.push(entry);
            }
            for r in 0..rows {
                let y = y0 + r;
                let at = r * wp + x_lo;
                if screen.spatial_only {
                    let (labels, _) = S::as_mut_simd_i32s(&mut near[at..at + LANES]);
                    for (j, label) in labels.iter_mut().enumerate() {
                        let mut best = infinity;
                        let mut nearest = *label;
                        for cluster in tile.iter() {
                            let Some(spatial) = cluster.spatial(simd, r, j) else {
                                continue;
                            };
                            let closer = simd.less_than_f32s(spatial, best);
                            best = simd.min_f32s(spatial, best);
                            nearest =
                                simd.select_i32s(closer, simd.splat_i32s(cluster.label), nearest);
                        }
                        *label = nearest;
                    }
                    continue;
                }
                let (c0, _) = S::as_simd_f32s(&p0[at..at + LANES]);
                let (c1, _) = S::as_simd_f32s(&p1[at..at + LANES]);
                let (c2, _) = S::as_simd_f32s(&p2[at..at + LANES]);
                let (labels, _) = S::as_mut_simd_i32s(&mut near[at..at + LANES]);
                let mut unclear_lanes = 0u32;
                for (j, label) in labels.iter_mut().enumerate() {
                    let (v0, v1, v2) = (c0[j], c1[j], c2[j]);
                    let mut best = simd.transmute_u32s_f32s(infinity);
                    let mut second = best;
                    let mut nearest = *label;
                    for cluster in tile.iter() {
                        let Some(spatial) = cluster.spatial(simd, r, j) else {
                            continue;
                        };
                        let [m0, m1, m2] = cluster.colour;
                        let t0 = simd.sub_f32s(v0, simd.splat_f32s(m0));
                        let t1 = simd.sub_f32s(v1, simd.splat_f32s(m1));
                        let t2 = simd.sub_f32s(v2, simd.splat_f32s(m2));
                        // As `BlockCluster::distance`. Fused where the CPU has FMA, unfused
                        // on the scalar level (a software fused multiply-add would be
                        // dozens of times slower): `Gap`'s bound holds for both.
                        let colour = simd.mul_add_e_f32s(
                            t2,
                            t2,
                            simd.mul_add_e_f32s(t1, t1, simd.mul_f32s(t0, t0)),
                        );
                        let d =
                            simd.transmute_u32s_f32s(simd.mul_add_e_f32s(spatial, weight, colour));
                        // Distances are never negative nor NaN, so their bits order as they
                        // do: integer minima and maxima are single instructions.
                        let closer = simd.less_than_u32s(d, best);
                        second = simd.min_u32s(simd.max_u32s(d, best), second);
                        best = simd.min_u32s(d, best);
                        nearest = simd.select_i32s(closer, simd.splat_i32s(cluster.label), nearest);
                    }
                    *label = nearest;
                    let (best, second) = (
                        simd.transmute_f32s_u32s(best),
                        simd.transmute_f32s_u32s(second),
                    );
                    let clear = gap.clear_lanes(simd, best, second);
                    // Rare: the lanes are told apart one by one.
                    if simd.first_true_m32s(simd.not_m32s(clear)) < S::F32_LANES {
                        let mut pair = [[0.0f32; LANES]; 2];
                        S::as_mut_simd_f32s(&mut pair[0]).0[0] = best;
                        S::as_mut_simd_f32s(&mut pair[1]).0[0] = second;
                        let [best, second] = &pair;
                        for (l, (&b, &s)) in best.iter().zip(second).take(S::F32_LANES).enumerate()
                        {
                            if !gap.clear(b, s) {
                                unclear_lanes |= 1 << (j * S::F32_LANES + l);
                            }
                        }
                    }
                }
                if unclear_lanes != 0 {
                    let exact = exact_lanes(simd, screen, (y, x_lo), tile);
                    while unclear_lanes != 0 {
                        let l = unclear_lanes.trailing_zeros() as usize;
                        unclear_lanes &= unclear_lanes - 1;
                        if exact[l] >= 0 {
                            near[at + l] = exact[l] as i32;
                        }
                    }
                }
            }
        }
    }
}

/// The nearest of a tile's `clusters` (in order, the first winning ties) to each of the
/// [`LANES`] pixels from (`y`, `x_lo`) by scikit-image's double precision distances, −1 where
/// no window covers a pixel: what decides where [`AssignRows`]' single precision screen
/// cannot.
#[inline(always)]
fn exact_lanes<S: Simd>(
    simd: S,
    screen: &Screen<'_>,
    (y, x_lo): (usize, usize),
    clusters: &[TileCluster],
) -> [i64; LANES] {
    let i = y * screen.wp + x_lo;
    let (p0, _) = S::as_simd_f64s(&screen.planes[0][i..i + LANES]);
    let (p1, _) = S::as_simd_f64s(&screen.planes[1][i..i + LANES]);
    let (p2, _) = S::as_simd_f64s(&screen.planes[2][i..i + LANES]);
    let mut columns = [0f64; LANES];
    for (l, column) in columns.iter_mut().enumerate() {
        *column = (x_lo + l) as f64;
    }
    let (xs, _) = S::as_simd_f64s(&columns);
    let weight = simd.splat_f64s(screen.spatial_weight);
    let mut nearest = [-1i64; LANES];
    let (labels, _) = S::as_mut_simd_i64s(&mut nearest);
    for (j, label) in labels.iter_mut().enumerate() {
        let (v0, v1, v2, x) = (p0[j], p1[j], p2[j], xs[j]);
        let mut best = simd.splat_f64s(f64::MAX);
        for c in clusters.iter().map(|cluster| cluster.label as usize) {
            let Some((y0, y1, x0, x1)) = screen.boxes[c] else {
                continue;
            };
            if y < y0 || y >= y1 {
                continue;
            }
            let cen = &screen.centres[c * 6..(c + 1) * 6];
            // As `Distance::of`, operation for operation.
            let distance = Distance::new(cen, y, screen.spatial_weight, None);
            let t0 = simd.sub_f64s(v0, simd.splat_f64s(cen[3]));
            let t1 = simd.sub_f64s(v1, simd.splat_f64s(cen[4]));
            let t2 = simd.sub_f64s(v2, simd.splat_f64s(cen[5]));
            let colour = simd.add_f64s(
                simd.add_f64s(simd.mul_f64s(t0, t0), simd.mul_f64s(t1, t1)),
                simd.mul_f64s(t2, t2),
            );
            let tx = simd.sub_f64s(simd.splat_f64s(distance.cx), x);
            let spatial = simd.mul_f64s(
                simd.add_f64s(simd.splat_f64s(distance.dzy), simd.mul_f64s(tx, tx)),
                weight,
            );
            let d = simd.add_f64s(spatial, colour);
            let inside = simd.and_m64s(
                simd.greater_than_or_equal_f64s(x, simd.splat_f64s(x0 as f64)),
                simd.less_than_f64s(x, simd.splat_f64s(x1 as f64)),
            );
            let closer = simd.and_m64s(inside, simd.less_than_f64s(d, best));
            best = simd.select_f64s(closer, d, best);
            *label = simd.select_i64s(closer, simd.splat_i64s(c as i64), *label);
        }
    }
    nearest
}

/// A cluster whose window meets a block of rows of [`AssignRows`], in single precision, with
/// the spatial distance split into a row term and a column term.
#[derive(Clone, Copy)]
struct BlockCluster {
    /// Δz² + Δy² on each row of the block, ∞ outside the window.
    row_terms: [f32; BLOCK_ROWS],
    colour: [f32; 3],
    cx: f32,
    /// The window's columns.
    columns: (usize, usize),
    index: usize,
}

impl BlockCluster {
    /// Cluster `index`, centred at `cen` (z, y, x, three colours), with window `(y0, y1, x0,
    /// x1)`, on the block of rows `block` (at most [`BLOCK_ROWS`]).
    fn new(
        cen: &[f64],
        (y0, y1, x0, x1): (usize, usize, usize, usize),
        index: usize,
        block: std::ops::Range<usize>,
    ) -> Self {
        let (cy, dz) = (cen[1] as f32, (cen[0] * cen[0]) as f32);
        let mut row_terms = [f32::INFINITY; BLOCK_ROWS];
        for (term, y) in row_terms.iter_mut().zip(block) {
            if (y0..y1).contains(&y) {
                let ty = cy - y as f32;
                *term = dz + ty * ty;
            }
        }
        Self {
            row_terms,
            colour: [cen[3] as f32, cen[4] as f32, cen[5] as f32],
            cx: cen[2] as f32,
            columns: (x0, x1),
            index,
        }
    }

    /// The spatial distance's part from column `x`, Δx², or ∞ outside the window.
    #[cfg(test)]
    fn column_term(self, x: usize) -> f32 {
        if (self.columns.0..self.columns.1).contains(&x) {
            let tx = self.cx - x as f32;
            tx * tx
        } else {
            f32::INFINITY
        }
    }

    /// The distance to a pixel of colour `v` on the block's row `r`, column `x`, with spatial
    /// weight `weight`, as [`Distance::of`] in single precision and as [`AssignRows`]
    /// computes it: with fused multiply-adds where the CPU has them (`fused`), each dropping
    /// a rounding, or without, as on the scalar level.
    #[cfg(test)]
    fn distance(
        self,
        [v0, v1, v2]: [f32; 3],
        weight: f32,
        (r, x): (usize, usize),
        fused: bool,
    ) -> f32 {
        let mul_add = |a: f32, b: f32, c: f32| if fused { a.mul_add(b, c) } else { a * b + c };
        let [m0, m1, m2] = self.colour;
        let (t0, t1, t2) = (v0 - m0, v1 - m1, v2 - m2);
        let colour = mul_add(t2, t2, mul_add(t1, t1, t0 * t0));
        mul_add(self.column_term(x) + self.row_terms[r], weight, colour)
    }
}

/// scikit-image's `_enforce_label_connectivity_cython` for a 2-D label map.
///
/// The reference floods each segment breadth-first from its first unlabelled pixel in raster
/// order, stopping at `max_size` pixels, and gives a segment under `min_size` pixels the label
/// of the last labelled neighbour the flood met. Only those two kinds of segment depend on the
/// order of the flood; any other is simply the next label. So each segment is flooded as the
/// reference floods it only until it reaches `min_size` pixels (most segments are small and
/// end there); a larger one goes on row run by row run, several times faster than pixel by
/// pixel, and only one cut at `max_size` is undone and flooded again exactly. (With
/// `max_size < min_size` every segment is filled by runs first, and the small or cut ones are
/// flooded again.)
///
/// With more than one thread, a large map is labelled in two bands at once (see [`Bands`]).
fn enforce_connectivity(
    labels: &mut [i32],
    (h, w): (usize, usize),
    sizes: (usize, usize),
    start_label: i32,
    buffers: [&mut Vec<i32>; 3],
) {
    let split = (rayon::current_num_threads() > 1 && Bands::worth_splitting(h, w)).then_some(h / 2);
    connect(labels, (h, w), sizes, start_label, buffers, split);
}

/// [`enforce_connectivity`], in two bands split at row `split` when given; returns whether the
/// bands gave the labels (else they were labelled in one pass).
fn connect(
    labels: &mut [i32],
    (h, w): (usize, usize),
    sizes: (usize, usize),
    start_label: i32,
    [framed, framed_out, band_out]: [&mut Vec<i32>; 3],
    split: Option<usize>,
) -> bool {
    if let Some(bands) = split.and_then(|y| Bands::new((h, w), y)) {
        let buffers = [&mut *framed, &mut *framed_out, &mut *band_out];
        if bands.label(labels, buffers, sizes, start_label) {
            return true;
        }
        // A segment of the top band was cut at `max_size` and left a piece in the bottom one.
    }
    let framed = Framed::frame(labels, (h, w), framed);
    let mut map = Framed {
        labels: framed,
        out: Framed::unlabelled(framed_out, framed.len()),
        w,
        stride: w + 2,
    };
    Scratch::with(|scratch| map.label_rows(0..h, start_label, sizes, scratch));
    unframe_rows(map.out, labels, 0..h, w);
    false
}

/// The connectivity in two bands of rows at once, for two threads; the labels are the
/// reference's.
///
/// Segments are numbered in the raster order of their first pixels, so every segment that
/// starts in the top band comes before every one that starts in the bottom band. The top band
/// is labelled as in one pass, its floods going on into the bottom band. The bottom band, at
/// the same time, first marks the pieces of segments that reach up into the top band (those
/// are the top band's to label), then labels the segments that start in it, from 0, as if the
/// top band and the marked pieces were labelled already (in the reference they are, by then).
/// A small segment that meets a marked pixel last takes a reference to that pixel as its
/// label. Once both are done, the bottom band's labels are offset by the top band's count and
/// its references replaced by the top band's labels.
///
/// This fails only when a segment of the top band is cut at `max_size` and the rest of it
/// left in the bottom band (then the rest would start there); the caller labels the map in
/// one pass instead.
struct Bands {
    h: usize,
    w: usize,
    /// The first row of the bottom band.
    split: usize,
}

impl Bands {
    /// The fewest pixels worth the second thread's start.
    const MIN_PIXELS: usize = 1 << 14;

    /// Whether a map of `h` × `w` is large enough to split ([`Bands::new`] checks that it is
    /// small enough).
    fn worth_splitting(h: usize, w: usize) -> bool {
        h >= 8 && h * w >= Self::MIN_PIXELS
    }

    /// Whether every framed index of an `h` × `w` map, as a reference, stays within `i32`.
    fn fits(h: usize, w: usize) -> bool {
        (h + 2)
            .checked_mul(w + 2)
            .is_some_and(|n| n < (i32::MAX / 2) as usize)
    }

    /// Bands split at row `split`, if it leaves both non-empty.
    fn new((h, w): (usize, usize), split: usize) -> Option<Self> {
        (split > 0 && split < h && w > 0 && Self::fits(h, w)).then_some(Self { h, w, split })
    }

    /// Labels `labels` in place: framed in the first of `buffers`, the top band's labels in
    /// the second, the bottom band's in the third. Returns false, with `labels` untouched,
    /// when the bands cannot give the reference's labels.
    fn label(
        &self,
        labels: &mut [i32],
        [framed, out, band_out]: [&mut Vec<i32>; 3],
        sizes: (usize, usize),
        start_label: i32,
    ) -> bool {
        use std::sync::{Mutex, OnceLock};
        let (h, w, split) = (self.h, self.w, self.split);
        let stride = w + 2;
        let len = (h + 2) * stride;
        let source: &[i32] = labels;
        // Each band's buffers, taken by whichever thread labels it.
        let top_buffers = Mutex::new(Some((framed, out)));
        let bottom_buffer = Mutex::new(Some(band_out));
        let map = OnceLock::new();
        let (top_labels, bottom_labels) = (OnceLock::new(), OnceLock::new());
        let band = |unit: usize| {
            if unit == 0 {
                let Some((framed, out)) = take(&top_buffers) else {
                    return;
                };
                // Framed here, while the other thread starts; the bottom band waits for it (the
                // framing cannot panic, so it never waits in vain).
                let framed: &[i32] = map.get_or_init(|| Framed::frame(source, (h, w), framed));
                let mut top = Framed {
                    labels: framed,
                    out: Framed::unlabelled(out, len),
                    w,
                    stride,
                };
                let count =
                    Scratch::with(|scratch| top.label_rows(0..split, start_label, sizes, scratch));
                let Framed { out, .. } = top;
                let _ = top_labels.set((count, &*out));
            } else {
                let Some(band_out) = take(&bottom_buffer) else {
                    return;
                };
                let band_out = self.band_start(band_out, len, stride);
                let mut bottom = Framed {
                    labels: spin_until(|| map.get().copied()),
                    out: band_out,
                    w,
                    stride,
                };
                Scratch::with(|scratch| {
                    bottom.mark_reaching_up(split, &mut scratch.fill);
                    bottom.label_rows(split..h, 0, sizes, scratch);
                });
                let Framed { out, .. } = bottom;
                let _ = bottom_labels.set(out);
            }
        };
        // As in `kmeans`: the thread that starts first takes the top band, and a thread that
        // has not started by the end of it leaves the bottom band to the first.
        let phases = Phases::new(1);
        rayon::scope(|s| {
            s.spawn(|_| phases.run(0, 2, band));
            phases.run(0, 2, band);
        });
        let (Some((count, top)), Some(band)) =
            (top_labels.into_inner(), bottom_labels.into_inner())
        else {
            return false;
        };
        // The bottom band's final labels, in place; `labels` is written only once all are.
        for y in split..h {
            let first = (y + 1) * stride + 1;
            for p in first..first + w {
                let given = band[p];
                let label = if given >= 0 {
                    count + given
                } else if given == Framed::MARKED {
                    top[p]
                } else {
                    top[Framed::referred(given)]
                };
                if label < 0 {
                    return false;
                }
                band[p] = label;
            }
        }
        unframe_rows(top, labels, 0..split, w);
        unframe_rows(band, labels, split..h, w);
        true
    }

    /// `band_out` (`len` framed pixels) ready for the bottom band: the last row of the top
    /// band marked, and the bottom band and frame unlabelled. The rows above are never read.
    fn band_start<'b>(
        &self,
        band_out: &'b mut Vec<i32>,
        len: usize,
        stride: usize,
    ) -> &'b mut [i32] {
        super::resize_for_overwrite(band_out, len);
        let above = self.split * stride;
        band_out[above..above + stride].fill(Framed::MARKED);
        band_out[above] = -1;
        band_out[above + stride - 1] = -1;
        band_out[above + stride..].fill(-1);
        band_out
    }
}

/// The value in `slot`, taken, whatever a thread that panicked holding it left.
fn take<T>(slot: &std::sync::Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Copies `rows` of the framed labels `framed` (`w` + 2 a row) into `labels` (`w` a row).
fn unframe_rows(framed: &[i32], labels: &mut [i32], rows: std::ops::Range<usize>, w: usize) {
    for y in rows {
        let first = (y + 1) * (w + 2) + 1;
        labels[y * w..(y + 1) * w].copy_from_slice(&framed[first..first + w]);
    }
}

/// Scratch space of one thread's floods.
#[derive(Default)]
struct Scratch {
    fill: RunFill,
    queue: Queue,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl Scratch {
    /// Calls `f` with this thread's scratch space, kept between calls (growing and freeing
    /// it took as long as a small segment's flood).
    fn with<R>(f: impl FnOnce(&mut Self) -> R) -> R {
        let trim = |scratch: &mut Self| {
            Buffers::trim(&mut scratch.queue.items);
            Buffers::trim(&mut scratch.fill.runs);
            Buffers::trim(&mut scratch.fill.seeds);
        };
        super::with_kept(&SCRATCH, trim, f)
    }
}

/// A label map and the labels being given to it, both framed by one pixel of [`Framed::EDGE`]
/// (a label no pixel has, and never given one), so that floods look at neighbours without
/// bounds checks.
struct Framed<'a> {
    labels: &'a [i32],
    /// The new labels; −1 where none is given yet, [`Framed::MARKED`] or a reference
    /// ([`Framed::refer`]) in the bottom one of two [`Bands`].
    out: &'a mut [i32],
    w: usize,
    /// `w` + 2.
    stride: usize,
}

impl<'a> Framed<'a> {
    const EDGE: i32 = i32::MIN;
    /// A pixel labelled by the top one of two [`Bands`].
    const MARKED: i32 = -2;

    /// `labels` (`h` × `w`) framed, in the memory of `buffer` (reused memory spares the page
    /// faults of fresh memory).
    fn frame(labels: &[i32], (h, w): (usize, usize), buffer: &'a mut Vec<i32>) -> &'a [i32] {
        let stride = w + 2;
        buffer.clear();
        buffer.resize((h + 2) * stride, Self::EDGE);
        if w > 0 {
            for (row, src) in buffer[stride..]
                .chunks_exact_mut(stride)
                .zip(labels.chunks_exact(w))
            {
                row[1..=w].copy_from_slice(src);
            }
        }
        buffer
    }

    /// `len` unlabelled pixels in the memory of `buffer`.
    fn unlabelled(buffer: &'a mut Vec<i32>, len: usize) -> &'a mut [i32] {
        buffer.clear();
        buffer.resize(len, -1);
        buffer
    }

    /// The label a small segment of the bottom band takes from the marked pixel `p`: whatever
    /// the top band gives `p`. Below −2, so no label or mark.
    fn refer(p: usize) -> i32 {
        -3 - p as i32
    }

    /// The pixel of a reference.
    fn referred(label: i32) -> usize {
        (-3 - label) as usize
    }

    /// The framed indices of row `y`.
    fn row(&self, y: usize) -> std::ops::Range<usize> {
        let first = (y + 1) * self.stride + 1;
        first..first + self.w
    }

    /// Labels the segments that start in `rows`, in raster order, from label `next`; returns
    /// the next label.
    fn label_rows(
        &mut self,
        rows: std::ops::Range<usize>,
        mut next: i32,
        (min_size, max_size): (usize, usize),
        Scratch { fill, queue }: &mut Scratch,
    ) -> i32 {
        for y in rows {
            for start in self.row(y) {
                if self.out[start] != -1 {
                    continue;
                }
                if min_size <= max_size {
                    // Most segments are small: flooded as the reference floods them until they
                    // reach `min_size`, they are done in one pass; the others go on by runs.
                    let Some(visited) = self.flood_while_small(start, next, min_size, queue) else {
                        continue;
                    };
                    fill.seeds.clear();
                    for &p in &queue.pixels()[visited..] {
                        fill.seeds
                            .extend([p + 1, p - 1, p + self.stride, p - self.stride]);
                    }
                    let label = self.labels[start];
                    let flooded = queue.pixels().len();
                    let size = flooded + self.grow_runs(label, next, max_size - flooded, fill);
                    if size < max_size {
                        next += 1;
                        continue;
                    }
                    // Cut at `max_size`: undone, then flooded as the reference floods it.
                    for &q in queue.pixels() {
                        self.out[q] = -1;
                    }
                } else {
                    let size = self.fill_runs(start, next, max_size, fill);
                    if size >= min_size && size < max_size {
                        next += 1;
                        continue;
                    }
                }
                // A small or cut segment: undone, then flooded as the reference floods it.
                for run in &fill.runs {
                    self.out[run.clone()].fill(-1);
                }
                next = self.flood(start, (next, min_size, max_size), queue);
            }
        }
        next
    }

    /// Marks, in the bottom one of two [`Bands`] starting at row `split`, the pieces of the
    /// segments that reach up into the top band.
    fn mark_reaching_up(&mut self, split: usize, fill: &mut RunFill) {
        for p in self.row(split) {
            if self.out[p] == -1 && self.labels[p] == self.labels[p - self.stride] {
                self.fill_runs(p, Self::MARKED, usize::MAX, fill);
            }
        }
    }

    /// Gives the unlabelled pixels of `start`'s label connected to it the label `next`, row run
    /// by row run, until `max_size` pixels; returns how many it labelled, which `fill.runs`
    /// lists.
    fn fill_runs(&mut self, start: usize, next: i32, max_size: usize, fill: &mut RunFill) -> usize {
        fill.seeds.clear();
        fill.seeds.push(start);
        self.grow_runs(self.labels[start], next, max_size, fill)
    }

    /// Gives the label `next` to the unlabelled pixels of label `label` connected to any of
    /// `fill.seeds` (seeds of another label, or labelled, are passed over), row run by row
    /// run, until `max_size` pixels; returns how many it labelled, which `fill.runs` lists.
    fn grow_runs(&mut self, label: i32, next: i32, max_size: usize, fill: &mut RunFill) -> usize {
        let RunFill { runs, seeds } = fill;
        runs.clear();
        let (labels, out, stride) = (self.labels, &mut *self.out, self.stride);
        let open = |out: &[i32], p: usize| labels[p] == label && out[p] == -1;
        let mut size = 0;
        while let Some(p) = seeds.pop() {
            if !open(out, p) {
                continue;
            }
            // The frame is never open, so the runs stop at it.
            let mut first = p;
            while open(out, first - 1) {
                first -= 1;
            }
            let mut end = p + 1;
            while open(out, end) {
                end += 1;
            }
            out[first..end].fill(next);
            runs.push(first..end);
            size += end - first;
            if size >= max_size {
                break;
            }
            // The runs above and below (the frame rows included: never open).
            for row_first in [first - stride, first + stride] {
                let row_end = row_first + (end - first);
                let mut q = row_first;
                while q < row_end {
                    if open(out, q) {
                        seeds.push(q);
                        while q < row_end && open(out, q) {
                            q += 1;
                        }
                    } else {
                        q += 1;
                    }
                }
            }
        }
        size
    }

    /// The reference's breadth-first flood from `start` with label `next`, into `queue` in
    /// order, until it holds `cap` pixels (it may hold fewer: the whole segment). Returns the
    /// label of the last labelled neighbour of another segment it met (`next` if none) and how
    /// many pixels of `queue` had all their neighbours visited.
    fn flood_until(
        &mut self,
        start: usize,
        next: i32,
        cap: usize,
        queue: &mut Queue,
    ) -> (i32, usize) {
        let (labels, out, stride) = (self.labels, &mut *self.out, self.stride);
        let mut adjacent = next;
        let label = labels[start];
        out[start] = next;
        let cap = cap.max(1);
        // Every push below is at an index under `cap`: the flood stops when it reaches it.
        if queue.items.len() < cap {
            queue.items.resize(cap, 0);
        }
        let items = &mut queue.items[..cap];
        items[0] = start;
        let mut len = 1;
        let mut visited = 0;
        'flood: while visited < len && len < cap {
            let p = items[visited];
            // +x, −x, +y, −y; the frame's label matches none and it is never labelled. Which
            // neighbours join is random: without branches, each one is written whether or not.
            for q in [p + 1, p - 1, p + stride, p - stride] {
                let o = out[q];
                let joins = (labels[q] == label) & (o == -1);
                items[len] = q;
                len += usize::from(joins);
                out[q] = if joins { next } else { o };
                // A marked pixel (only in a bottom band) is labelled, by the top band.
                let met = if o == Self::MARKED { Self::refer(q) } else { o };
                adjacent = if !joins & (o != -1) & (o != next) {
                    met
                } else {
                    adjacent
                };
                if len >= cap {
                    // The rest of `p`'s neighbours are not visited.
                    break 'flood;
                }
            }
            visited += 1;
        }
        queue.len = len;
        (adjacent, visited)
    }

    /// Gives the pixels of a flood (`queue`) the label `adjacent` of the last neighbour it met
    /// if there are fewer than `min_size` of them, as the reference does; whether it did.
    fn settle_small(&mut self, queue: &Queue, adjacent: i32, min_size: usize) -> bool {
        let queue = queue.pixels();
        let small = queue.len() < min_size;
        if small {
            for &q in queue {
                self.out[q] = adjacent;
            }
        }
        small
    }

    /// [`Self::flood_until`] `min_size` pixels: `None` when the segment is smaller (then
    /// labelled as the reference labels it, [`Self::settle_small`]), else how many pixels of
    /// `queue` had their neighbours visited.
    fn flood_while_small(
        &mut self,
        start: usize,
        next: i32,
        min_size: usize,
        queue: &mut Queue,
    ) -> Option<usize> {
        let (adjacent, visited) = self.flood_until(start, next, min_size, queue);
        (!self.settle_small(queue, adjacent, min_size)).then_some(visited)
    }

    /// The reference's breadth-first flood from `start` with label `next`, stopped at
    /// `max_size` pixels; a segment under `min_size` pixels takes the label of the last
    /// labelled neighbour it met instead. Returns the next label.
    fn flood(
        &mut self,
        start: usize,
        (next, min_size, max_size): (i32, usize, usize),
        queue: &mut Queue,
    ) -> i32 {
        let (adjacent, _) = self.flood_until(start, next, max_size, queue);
        if self.settle_small(queue, adjacent, min_size) {
            next
        } else {
            next + 1
        }
    }
}

/// The pixels of a flood in the order it reached them: the first `len` of `items`, whose
/// memory only grows, so that a flood writes each pixel without checking for room.
#[derive(Default)]
struct Queue {
    items: Vec<usize>,
    len: usize,
}

impl Queue {
    fn pixels(&self) -> &[usize] {
        &self.items[..self.len]
    }
}

/// Scratch space of [`Framed::fill_runs`]: the runs it labelled (framed index ranges), and the
/// seeds it has still to visit.
#[derive(Default)]
struct RunFill {
    runs: Vec<std::ops::Range<usize>>,
    seeds: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The reference's breadth-first flood from `start` with label `next`, on the unframed
    /// map and with bounds checks, as it was written first; returns the next label.
    fn flood(
        labels: &[i32],
        (h, w): (usize, usize),
        start: usize,
        (next, min_size, max_size): (i32, usize, usize),
        out: &mut [i32],
        queue: &mut Vec<(usize, usize)>,
    ) -> i32 {
        let n = h * w;
        let mut adjacent = next;
        let label = labels[start];
        out[start] = next;
        queue.clear();
        // Pixels with their column, which spares a division per visit.
        queue.push((start, start % w));
        let mut visited = 0;
        while visited < queue.len() && queue.len() < max_size {
            let (p, x) = queue[visited];
            // +x, −x, +y, −y
            let neighbours = [
                (x + 1 < w).then(|| (p + 1, x + 1)),
                (x > 0).then(|| (p - 1, x - 1)),
                (p + w < n).then(|| (p + w, x)),
                (p >= w).then(|| (p - w, x)),
            ];
            for (q, qx) in neighbours.into_iter().flatten() {
                let o = out[q];
                if labels[q] == label && o == -1 {
                    out[q] = next;
                    queue.push((q, qx));
                    if queue.len() >= max_size {
                        break;
                    }
                } else if o >= 0 && o != next {
                    adjacent = o;
                }
            }
            visited += 1;
        }
        if queue.len() < min_size {
            for &(q, _) in queue.iter() {
                out[q] = adjacent;
            }
            next
        } else {
            next + 1
        }
    }

    /// The reference's order without the shortcut: a pixel-by-pixel flood from every
    /// unlabelled pixel in raster order. Returns the labels and, for each pixel, the pixel
    /// its flood started from.
    fn enforce_connectivity_by_flood(
        labels: &[i32],
        h: usize,
        w: usize,
        min_size: usize,
        max_size: usize,
        start_label: i32,
    ) -> (Vec<i32>, Vec<usize>) {
        let mut out = vec![-1i32; h * w];
        let mut starts = vec![0; h * w];
        let mut next = start_label;
        let mut queue = Vec::new();
        for start in 0..h * w {
            if out[start] < 0 {
                let sizes = (next, min_size, max_size);
                next = flood(labels, (h, w), start, sizes, &mut out, &mut queue);
                for &(q, _) in &queue {
                    starts[q] = start;
                }
            }
        }
        (out, starts)
    }

    /// Whether two bands split at row `split` fail to give the reference's labels: when a
    /// pixel of the bottom band joined (in it) to a pixel of its label just above it was
    /// flooded from the bottom band. That happens only after a cut at `max_size`.
    fn bands_fail(labels: &[i32], (h, w): (usize, usize), split: usize, starts: &[usize]) -> bool {
        let mut reaching_up = vec![false; h * w];
        let mut stack: Vec<usize> = (split * w..(split + 1) * w)
            .filter(|&p| labels[p] == labels[p - w])
            .collect();
        while let Some(p) = stack.pop() {
            if std::mem::replace(&mut reaching_up[p], true) {
                continue;
            }
            let (y, x) = (p / w, p % w);
            let neighbours = [
                (x + 1 < w).then(|| p + 1),
                (x > 0).then(|| p - 1),
                (y + 1 < h).then(|| p + w),
                (y > split).then(|| p - w),
            ];
            stack.extend(
                neighbours
                    .into_iter()
                    .flatten()
                    .filter(|&q| labels[q] == labels[p] && !reaching_up[q]),
            );
        }
        (split * w..h * w).any(|p| reaching_up[p] && starts[p] >= split * w)
    }

    /// A [`Simd`] level that [`Screen::assign_rows`] uses instead of the best one, so that the
    /// tests cover the levels this CPU would not pick.
    type Forced = fn(AssignRows<'_, '_>);

    /// Process-wide, as the assignment runs on the thread pool: other tests running meanwhile
    /// may use the level too, which changes nothing but their speed.
    pub(super) static FORCED_SIMD: std::sync::Mutex<Option<Forced>> = std::sync::Mutex::new(None);

    /// The levels to test beside the best one: one scalar lane, and AVX2 (8 lanes) where
    /// the CPU has it.
    fn forced_levels() -> Vec<(&'static str, Forced)> {
        let mut levels: Vec<(&'static str, Forced)> =
            vec![("scalar", |op| op.with_simd(pulp::Scalar::new()))];
        #[cfg(target_arch = "x86_64")]
        if pulp::x86::V3::try_new().is_some() {
            levels.push(("avx2", |op| {
                if let Some(simd) = pulp::x86::V3::try_new() {
                    pulp::Simd::vectorize(simd, op)
                }
            }));
        }
        levels
    }

    #[test]
    fn every_simd_level_gives_the_same_labels() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        for case in 0..12 {
            let (h, w) = (rng.random_range(1..60), rng.random_range(1..60));
            let image = ndarray::Array3::from_shape_fn((h, w, 3), |_| rng.random_range(0.0..1.0));
            let slic = Slic {
                n_segments: rng.random_range(1..40),
                compactness: [10.0, 0.1, 100.0][case % 3],
                ..Slic::default()
            };
            let best = slic.segment_screened(image.view(), true).unwrap();
            for (name, level) in forced_levels() {
                *FORCED_SIMD.lock().unwrap() = Some(level);
                let forced = slic.segment_screened(image.view(), true);
                *FORCED_SIMD.lock().unwrap() = None;
                assert_eq!(
                    forced.unwrap(),
                    best,
                    "case {case}, {name}: {h}×{w}, {slic:?}"
                );
            }
        }
    }

    /// The k-means gives the same labels on any number of threads, when the other threads
    /// of the pool are busy (some of its threads then join late or never), and with
    /// segmentations nested in a parallel loop: screened, double precision, grey and
    /// SLIC-zero.
    #[test]
    fn the_labels_do_not_depend_on_the_threads() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let cases: Vec<(ndarray::Array3<f64>, Slic)> = (0..8)
            .map(|case| {
                let (h, w) = (rng.random_range(20..90), rng.random_range(20..90));
                let ch = if case % 4 == 3 { 1 } else { 3 };
                let image =
                    ndarray::Array3::from_shape_fn((h, w, ch), |_| rng.random_range(0.0..1.0));
                let slic = Slic {
                    n_segments: rng.random_range(2..80),
                    slic_zero: case % 4 == 2,
                    ..Slic::default()
                };
                (image, slic)
            })
            .collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let expected: Vec<Array2<i32>> = one.install(|| {
            cases
                .iter()
                .map(|(image, slic)| slic.segment_screened(image.view(), true).unwrap())
                .collect()
        });
        for threads in [2, 3, 5] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for ((image, slic), expected) in cases.iter().zip(&expected) {
                for screen in [true, false] {
                    let labels = pool.install(|| slic.segment_screened(image.view(), screen));
                    assert_eq!(&labels.unwrap(), expected, "{threads} threads, {slic:?}");
                }
                // One thread busy while the others segment.
                let busy = std::sync::atomic::AtomicBool::new(true);
                let labels = pool.install(|| {
                    rayon::join(
                        || {
                            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                                std::hint::spin_loop();
                            }
                        },
                        || {
                            let labels = slic.segment(image.view());
                            busy.store(false, std::sync::atomic::Ordering::Relaxed);
                            labels
                        },
                    )
                    .1
                });
                assert_eq!(&labels.unwrap(), expected, "{threads} threads, one busy");
            }
            // Every thread segmenting at once.
            let nested: Vec<Array2<i32>> = pool.install(|| {
                cases
                    .par_iter()
                    .map(|(image, slic)| slic.segment(image.view()).unwrap())
                    .collect()
            });
            assert_eq!(nested, expected, "{threads} threads, nested");
        }
    }

    /// The single precision screen changes no label: random, blocky (exact ties between
    /// clusters, which only the double precision distances settle), few-level and smooth
    /// images, with large and tiny compactness (colour values up to thousands), smoothing,
    /// and grey images through the double precision path.
    #[test]
    fn the_screen_gives_the_double_precision_labels() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for case in 0..60 {
            let h = rng.random_range(1..70);
            let w = rng.random_range(1..70);
            let ch = if case % 10 == 9 { 1 } else { 3 };
            let kind = case % 4;
            let block = rng.random_range(2..9);
            let levels = rng.random_range(2..6) as f64;
            let image = ndarray::Array3::from_shape_fn((h, w, ch), |(y, x, c)| match kind {
                0 => rng.random_range(0.0..1.0),
                1 => (((y / block) * 7 + (x / block) * 3 + c) % 5) as f64 / 4.0,
                2 => (rng.random_range(0.0..levels)).floor() / levels,
                _ => ((y as f64 * 0.1 + c as f64).sin() + (x as f64 * 0.07).cos()) * 0.25 + 0.5,
            });
            let slic = Slic {
                n_segments: rng.random_range(1..60),
                compactness: [10.0, 0.01, 100.0, 1.0][case % 4],
                sigma: if case % 3 == 0 { 0.7 } else { 0.0 },
                ..Slic::default()
            };
            let screened = slic.segment_screened(image.view(), true).unwrap();
            let exact = slic.segment_screened(image.view(), false).unwrap();
            assert_eq!(screened, exact, "case {case}: {h}×{w}×{ch}, {slic:?}");
        }
    }

    /// [`Gap::error`] bounds the difference between the single and the double precision
    /// distance, on random centres and pixels and where the colour differences vanish.
    #[test]
    fn the_spatial_distance_decides_only_for_alike_centres_on_grid_points() {
        let window = Some((0, 10, 0, 10));
        let grid = [0.0, 5.0, 7.0, 0.0, 0.0, 0.0, 0.0, 5.0, 17.0, 0.0, 0.0, 0.0];
        let decides = |centres: &[f64], boxes: &[_], size: usize, colour_bound: f64| {
            spatial_decides(centres, boxes, (size, size), 1.0 / 100.0, colour_bound)
        };
        assert!(decides(&grid, &[window, window], 224, 30.0));
        let mut moved = grid;
        moved[8] = 17.5;
        assert!(!decides(&moved, &[window, window], 224, 30.0));
        // A cluster without a window does not count.
        assert!(decides(&moved, &[window, None], 224, 30.0));
        let mut coloured = grid;
        coloured[10] = 0.25;
        assert!(!decides(&coloured, &[window, window], 224, 30.0));
        assert!(!decides(&grid, &[window, window], 4096, 30.0));
        // Colour distances so large that a step of w in P is lost to their rounding.
        assert!(!decides(&grid, &[window, window], 224, 1e8));
        assert!(!decides(&grid, &[None, None], 224, 30.0));
    }

    #[test]
    fn the_gap_bounds_the_rounding_of_a_distance() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut worst = 0.0f64;
        for case in 0..200_000 {
            let extent = [8.0, 224.0, 4000.0][case % 3];
            let colour_bound = [1.0, 13.0, 13000.0][case % 5 % 3];
            let step = rng.random_range(1.0..extent);
            let weight = 1.0 / (step * step);
            let gap = Gap::new(colour_bound, extent, weight);
            let mut colour = || rng.random_range(-colour_bound..colour_bound);
            let centre = [0.0, 0.0, 0.0, colour(), colour(), colour()];
            let pixel: [f64; 3] = if case % 7 == 0 {
                [centre[3], centre[4], centre[5]]
            } else {
                [colour(), colour(), colour()]
            };
            let mut centre = centre;
            centre[1] = rng.random_range(0.0..extent);
            centre[2] = rng.random_range(0.0..extent);
            let y = rng.random_range(0..extent as usize);
            let x = rng.random_range(0..extent as usize);
            let bounds = (0, extent as usize, 0, extent as usize);
            let cluster = BlockCluster::new(&centre, bounds, 0, y..y + 1);
            let fused = case % 2 == 0;
            let single = cluster.distance(pixel.map(|v| v as f32), weight as f32, (0, x), fused);
            let ty = centre[1] - y as f64;
            let t = [0, 1, 2].map(|c| pixel[c] - centre[3 + c]);
            let double = Distance {
                dzy: 0.0 + ty * ty,
                cx: centre[2],
                spatial_weight: weight,
                colour_scale: None,
            }
            .of(t[0] * t[0] + t[1] * t[1] + t[2] * t[2], x as f64);
            let error = (f64::from(single) - double).abs();
            let bound = f64::from(gap.error(single));
            assert!(
                error <= bound,
                "case {case} (fused {fused}): {single} vs {double}, bound {bound}"
            );
            if error > 0.0 {
                worst = worst.max(error / bound);
            }
        }
        // Not vacuous: the worst case uses a fair part of the bound.
        assert!(
            worst > 0.2,
            "the bound is loose: at most {worst} of it used"
        );
    }

    /// Blocky random label maps (with unassigned −1 pixels): many small segments, some large,
    /// some cut by `max_size`, and sizes that make `max_size` smaller than `min_size`. Each is
    /// labelled in one pass and in two bands split at every row.
    #[test]
    fn row_runs_give_the_floods_labels() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Reused from case to case, as the thread's buffers are from call to call.
        let mut buffers = (Vec::new(), Vec::new(), Vec::new());
        let (mut banded, mut in_one_pass) = (0, 0);
        for case in 0..600 {
            let h = rng.random_range(1..40);
            let w = rng.random_range(1..40);
            let labels_count = rng.random_range(1..6);
            let block = rng.random_range(1..8);
            let coarse: Vec<i32> = (0..(h / block + 1) * (w / block + 1))
                .map(|_| rng.random_range(-1..labels_count))
                .collect();
            let noise = rng.random_range(0.0..0.3);
            let labels: Vec<i32> = (0..h * w)
                .map(|p| {
                    let (y, x) = (p / w, p % w);
                    if rng.random_bool(noise) {
                        rng.random_range(-1..labels_count)
                    } else {
                        coarse[(y / block) * (w / block + 1) + x / block]
                    }
                })
                .collect();
            let min_size = rng.random_range(0..30);
            let max_size = rng.random_range(1..200);
            let start_label = case % 2;
            let (expected, starts) =
                enforce_connectivity_by_flood(&labels, h, w, min_size, max_size, start_label);
            for split in std::iter::once(None).chain((1..h).map(Some)) {
                let mut connected = labels.clone();
                let by_bands = connect(
                    &mut connected,
                    (h, w),
                    (min_size, max_size),
                    start_label,
                    [&mut buffers.0, &mut buffers.1, &mut buffers.2],
                    split,
                );
                assert_eq!(
                    connected, expected,
                    "case {case}: {h}×{w}, min_size {min_size}, max_size {max_size}, split {split:?}"
                );
                let fails = split.is_some_and(|split| bands_fail(&labels, (h, w), split, &starts));
                assert_eq!(
                    by_bands,
                    split.is_some() && !fails,
                    "case {case}: {h}×{w}, split {split:?}: the bands {} the labels",
                    if by_bands { "gave" } else { "did not give" }
                );
                if split.is_some() {
                    if by_bands {
                        banded += 1;
                    } else {
                        in_one_pass += 1;
                    }
                }
            }
        }
        // Both ways of a split are covered: the bands, and one pass after a cut.
        assert!(
            banded > 1000 && in_one_pass > 100,
            "{banded} banded, {in_one_pass} in one pass"
        );
    }
}
