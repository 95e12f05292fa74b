//! Winograd F(2×2, 3×3) for the forward pass of 3×3 stride-1 convolutions.
//!
//! Each 2×2 block of outputs (a *tile*) is computed from the 4×4 input patch under it as
//! `Y = Aᵀ [Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B)] A`: 16 multiplications per tile and channel pair
//! instead of 36. The element-wise products summed over input channels are 16 independent
//! matrix products `M_ξ = U_ξ · V_ξ` (`U_ξ`: `[c_out, c_in]`, the transformed weights, built
//! once; `V_ξ`: `[c_in, tiles]`, the transformed input), done with the same `gemm` kernels as
//! the direct path. The output transform writes each tile's four outputs with the bias, the
//! residual and the ReLU.
//!
//! Rounding differs from the direct product (the transforms add and subtract before and after
//! the products, and `G` halves), by a few units in the last place of the output's scale; the
//! backward pass stays the direct `Wᵀ`/col2im one, which is the same gradient mathematically.

use super::kernel::{matmul, MatRef, Threads};
use super::{KResult, KernelError};
use rayon::prelude::*;

/// Transform coefficients per tile: a 4×4 patch gives 16 products.
pub(super) const XI: usize = 16;

/// `U = G g Gᵀ` for every `(c_out, c_in)` pair of an OIHW 3×3 weight, laid out as
/// `[16][c_out][c_in]` (one row-major matrix per coefficient `ξ = 4 i + j`).
pub(super) fn transform_weights(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]; in f64 so that the only rounding is
    // the final one to f32.
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let pairs = c_out * c_in;
    let mut u = vec![0.0f32; XI * pairs];
    for (pair, g) in weight.chunks_exact(9).enumerate().take(pairs) {
        // gg = G · g (4×3), then u = gg · Gᵀ (4×4).
        let mut gg = [[0.0f64; 3]; 4];
        for (i, row) in gg.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|r| G[i][r] * f64::from(g[r * 3 + c])).sum();
            }
        }
        for (i, row) in gg.iter().enumerate() {
            for (j, gj) in G.iter().enumerate() {
                let v: f64 = (0..3).map(|c| row[c] * gj[c]).sum();
                u[(i * 4 + j) * pairs + pair] = v as f32;
            }
        }
    }
    u
}

/// Whether [`super::ConvAlgorithm::Auto`] takes Winograd for a 3×3 stride-1 convolution of
/// these sizes. Measured with `examples/bench_layers.rs --compare` (docs/PERFORMANCE.md) on
/// ResNet's shapes (64–512 channels): Winograd won on all of them except the 7×7 stage at
/// batch 1, whose 16 tiles make the products too narrow (a tie there). Fewer channels (CLIP's
/// ResNet stem has 32) were not measured and keep the direct product.
pub(super) fn pays_off(c_out: usize, c_in: usize, g: &super::Geom) -> bool {
    c_out >= 64 && c_in >= 64 && g.n * g.ho.div_ceil(2) * g.wo.div_ceil(2) >= 32
}

/// The sizes of one image's Winograd pass.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tiles {
    /// Input size.
    pub(super) h: usize,
    pub(super) w: usize,
    /// Output size (`h + 2 p − 2`, `w + 2 p − 2`).
    pub(super) ho: usize,
    pub(super) wo: usize,
    pub(super) padding: usize,
    /// Tile rows and columns (`⌈ho / 2⌉`, `⌈wo / 2⌉`).
    pub(super) th: usize,
    pub(super) tw: usize,
}

impl Tiles {
    pub(super) fn new(h: usize, w: usize, ho: usize, wo: usize, padding: usize) -> Self {
        Self {
            h,
            w,
            ho,
            wo,
            padding,
            th: ho.div_ceil(2),
            tw: wo.div_ceil(2),
        }
    }

    /// Tiles per image.
    pub(super) fn count(&self) -> usize {
        self.th * self.tw
    }
}

/// `f(chunk_index, chunk)` over `chunks_mut(size)`, in parallel when `threads` says so,
/// stopping at the first error.
fn try_chunks<F>(data: &mut [f32], size: usize, threads: Threads, f: F) -> KResult<()>
where
    F: Fn(usize, &mut [f32]) -> KResult<()> + Sync + Send,
{
    if size == 0 {
        return Ok(());
    }
    match threads {
        Threads::One => data
            .chunks_mut(size)
            .enumerate()
            .try_for_each(|(i, c)| f(i, c)),
        Threads::Rayon(_) => data
            .par_chunks_mut(size)
            .enumerate()
            .try_for_each(|(i, c)| f(i, c)),
    }
}

/// `Aᵀ M A` of every tile of output channel `co` of one image, plus bias and residual, then
/// ReLU, into `out` (`ho × wo`). `m` is `[16][c_out][cols]`; the image's tiles are the columns
/// `base .. base + tiles`.
///
/// Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
#[inline(always)]
fn output_channel(
    t: &Tiles,
    (m, cols, base): (&[f32], usize, usize),
    (c_out, co): (usize, usize),
    (bias, residual, relu): (f32, Option<&[f32]>, bool),
    out: &mut [f32],
) {
    let tw = t.tw;
    // s[j][a] over tx, then y[a][b] over tx.
    let mut s = vec![0.0f32; 8 * tw];
    let mut y = vec![0.0f32; 4 * tw];
    for ty in 0..t.th {
        let mrow = |xi: usize| &m[(xi * c_out + co) * cols + base + ty * tw..][..tw];
        for j in 0..4 {
            let (m0, m1, m2, m3) = (mrow(j), mrow(4 + j), mrow(8 + j), mrow(12 + j));
            let (s0, s1) = s[2 * j * tw..][..2 * tw].split_at_mut(tw);
            for x in 0..tw {
                s0[x] = m0[x] + m1[x] + m2[x];
                s1[x] = m1[x] - m2[x] - m3[x];
            }
        }
        let srow = |a: usize, j: usize| &s[(2 * j + a) * tw..][..tw];
        for a in 0..2 {
            let (q0, q1, q2, q3) = (srow(a, 0), srow(a, 1), srow(a, 2), srow(a, 3));
            let (y0, y1) = y[2 * a * tw..][..2 * tw].split_at_mut(tw);
            for x in 0..tw {
                y0[x] = q0[x] + q1[x] + q2[x] + bias;
                y1[x] = q1[x] - q2[x] - q3[x] + bias;
            }
        }
        for a in 0..2 {
            let oy = 2 * ty + a;
            if oy >= t.ho {
                break;
            }
            let (y0, y1) = y[2 * a * tw..][..2 * tw].split_at(tw);
            let dst = &mut out[oy * t.wo..][..t.wo];
            let pairs = t.wo / 2;
            for (x, d) in dst.chunks_exact_mut(2).enumerate().take(pairs) {
                d[0] = y0[x];
                d[1] = y1[x];
            }
            if t.wo % 2 == 1 {
                dst[t.wo - 1] = y0[pairs];
            }
            if let Some(r) = residual {
                for (d, r) in dst.iter_mut().zip(&r[oy * t.wo..][..t.wo]) {
                    *d += r;
                }
            }
            if relu {
                dst.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
    }
}

/// About how many tiles one matrix product covers: small images (ResNet's 14×14 and 7×7
/// stages have 49 and 16 tiles) are grouped so that the products are wide enough for gemm's
/// micro-kernel and each transformed weight matrix is streamed once per group, not per image.
const GROUP_TILES: usize = 128;

/// The whole batch through Winograd: `act(conv(x) + bias [+ residual])` for `x` of `n_img`
/// images of `c_in × h × w`; returns the `n_img × c_out × ho × wo` output.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    t: &Tiles,
    (c_out, c_in): (usize, usize),
    u: &[f32],
    bias: &[f32],
    x: &[f32],
    n_img: usize,
    (residual, relu): (Option<&[f32]>, bool),
) -> KResult<Vec<f32>> {
    let (per_in, per_out) = (c_in * t.h * t.w, c_out * t.ho * t.wo);
    let total = n_img.checked_mul(per_out).ok_or(KernelError::Overflow)?;
    if u.len() != XI * c_out * c_in
        || bias.len() != c_out
        || x.len() != n_img * per_in
        || residual.is_some_and(|r| r.len() != total)
    {
        return Err(KernelError::Shape("winograd operands do not fit".into()));
    }
    let mut out = vec![0.0f32; total];
    if total == 0 || per_in == 0 {
        return Ok(out);
    }
    let mut groups = (n_img * t.count()).div_ceil(GROUP_TILES).clamp(1, n_img);
    // A whole number of groups per thread, so that splitting over groups stays balanced.
    let threads = rayon::current_num_threads().max(1);
    if groups > 1 && groups < n_img {
        groups = groups.next_multiple_of(threads).min(n_img);
    }
    let size = n_img.div_ceil(groups);
    let groups = n_img.div_ceil(size);
    let run = |gi: usize, o: &mut [f32], scratch: &mut Vec<f32>, threads: Threads| {
        let g = o.len() / per_out;
        let (lo, hi) = (gi * size, gi * size + g);
        let buf = super::scratch_of(scratch, scratch_len(t, c_out, c_in) * g);
        forward_group(
            t,
            (c_out, c_in),
            (u, bias),
            &x[lo * per_in..hi * per_in],
            o,
            (residual.map(|r| &r[lo * per_out..hi * per_out]), relu),
            buf,
            threads,
        )
    };
    let (threads, over_groups) = super::plan(groups);
    if over_groups {
        out.par_chunks_mut(size * per_out)
            .enumerate()
            .try_for_each(|(gi, o)| super::with_scratch(|s| run(gi, o, s, Threads::One)))?;
    } else {
        let inner = if threads > 1 {
            Threads::Rayon(threads)
        } else {
            Threads::One
        };
        super::with_scratch(|s| {
            out.chunks_mut(size * per_out)
                .enumerate()
                .try_for_each(|(gi, o)| run(gi, o, s, inner))
        })?;
    }
    Ok(out)
}

/// `g` images (`x`: `g × c_in × h × w`, `out`: `g × c_out × ho × wo`) as one set of 16
/// products over all their tiles.
#[allow(clippy::too_many_arguments)]
fn forward_group(
    t: &Tiles,
    (c_out, c_in): (usize, usize),
    (u, bias): (&[f32], &[f32]),
    x: &[f32],
    out: &mut [f32],
    (residual, relu): (Option<&[f32]>, bool),
    buf: &mut [f32],
    threads: Threads,
) -> KResult<()> {
    let hwo = t.ho * t.wo;
    let g = out.len() / (c_out * hwo);
    let n = t.count();
    let cols = g * n;
    let (v, m) = buf.split_at_mut(XI * c_in * cols);
    let m = &mut m[..XI * c_out * cols];
    input_transform(t, (c_in, g), x, v, threads);
    let v = &*v;
    // The 16 products are independent: on several threads each runs whole on one of them,
    // which balances better than gemm's static split of every product.
    try_chunks(m, c_out * cols, threads, |xi, mx| {
        matmul(
            mx,
            MatRef::row_major(&u[xi * c_out * c_in..][..c_out * c_in], c_out, c_in),
            MatRef::row_major(&v[xi * c_in * cols..][..c_in * cols], c_in, cols),
            false,
            Threads::One,
        )
    })?;
    let m = &*m;
    try_chunks(out, hwo, threads, |job, o| {
        let (i, co) = (job / c_out, job % c_out);
        crate::simd::vectorize(|| {
            output_channel(
                t,
                (m, cols, i * n),
                (c_out, co),
                (bias[co], residual.map(|r| &r[job * hwo..][..hwo]), relu),
                o,
            )
        });
        Ok(())
    })
}

/// The input transform of `g` images into `v` (`[16][c_in][g · tiles]`: each ξ one contiguous
/// right-hand matrix), in parallel over images and channels when `threads` says so.
fn input_transform(
    t: &Tiles,
    (c_in, g): (usize, usize),
    x: &[f32],
    v: &mut [f32],
    threads: Threads,
) {
    let n = t.count();
    let hw = t.h * t.w;
    // One (image, channel)'s 16 rows are `c_in · g · tiles` apart: hand each its own rows.
    let mut jobs: Vec<Vec<&mut [f32]>> = (0..g * c_in).map(|_| Vec::with_capacity(XI)).collect();
    for (r, row) in v.chunks_mut(g * n).enumerate() {
        let ci = r % c_in;
        for (i, part) in row.chunks_mut(n).enumerate() {
            jobs[i * c_in + ci].push(part);
        }
    }
    let run = |job: usize, rows: &mut Vec<&mut [f32]>| {
        crate::simd::vectorize(|| input_channel_rows(t, &x[job * hw..][..hw], rows));
    };
    match threads {
        Threads::One => jobs.iter_mut().enumerate().for_each(|(j, r)| run(j, r)),
        Threads::Rayon(_) => jobs.par_iter_mut().enumerate().for_each(|(j, r)| run(j, r)),
    }
}

/// `Bᵀ d B` of every tile of one input channel `xc` (`h × w`) into `rows` (one `tiles`-long
/// row per ξ).
///
/// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]. Tile `(ty, tx)` reads the
/// padded input rows `2 ty .. 2 ty + 4` and columns `2 tx .. 2 tx + 4`; splitting each padded
/// row into its even and odd columns makes every loop over `tx` unit-stride.
#[inline(always)]
fn input_channel_rows(t: &Tiles, xc: &[f32], rows: &mut [&mut [f32]]) {
    let (tw, p) = (t.tw, t.padding);
    let wp = 2 * tw + 2;
    let mut padded = vec![0.0f32; wp];
    let mut even = vec![0.0f32; tw + 1];
    let mut odd = vec![0.0f32; tw + 1];
    let mut cols = vec![0.0f32; 16 * tw];
    let c_lo = p.min(wp);
    let c_hi = (p + t.w).min(wp);
    for ty in 0..t.th {
        for r in 0..4 {
            padded.fill(0.0);
            if let Some(iy) = (2 * ty + r).checked_sub(p).filter(|&iy| iy < t.h) {
                padded[c_lo..c_hi].copy_from_slice(&xc[iy * t.w..][..c_hi - c_lo]);
            }
            for (k, pair) in padded.chunks_exact(2).enumerate() {
                even[k] = pair[0];
                odd[k] = pair[1];
            }
            let (e0, e1, o0, o1) = (&even[..tw], &even[1..], &odd[..tw], &odd[1..]);
            let out = &mut cols[r * 4 * tw..][..4 * tw];
            let (t0, rest) = out.split_at_mut(tw);
            let (t1, rest) = rest.split_at_mut(tw);
            let (t2, t3) = rest.split_at_mut(tw);
            for x in 0..tw {
                t0[x] = e0[x] - e1[x];
                t1[x] = o0[x] + e1[x];
                t2[x] = e1[x] - o0[x];
                t3[x] = o0[x] - o1[x];
            }
        }
        let col = |r: usize, j: usize| &cols[(r * 4 + j) * tw..][..tw];
        for j in 0..4 {
            let (d0, d1, d2, d3) = (col(0, j), col(1, j), col(2, j), col(3, j));
            let dst = |i: usize| i * 4 + j;
            let off = ty * tw;
            combine(&mut rows[dst(0)][off..off + tw], d0, d2, -1.0);
            combine(&mut rows[dst(1)][off..off + tw], d1, d2, 1.0);
            combine(&mut rows[dst(2)][off..off + tw], d2, d1, -1.0);
            combine(&mut rows[dst(3)][off..off + tw], d1, d3, -1.0);
        }
    }
}

/// `v = a + sign · b` (sign ±1, exact).
#[inline(always)]
fn combine(v: &mut [f32], a: &[f32], b: &[f32], sign: f32) {
    if sign > 0.0 {
        for ((v, a), b) in v.iter_mut().zip(a).zip(b) {
            *v = a + b;
        }
    } else {
        for ((v, a), b) in v.iter_mut().zip(a).zip(b) {
            *v = a - b;
        }
    }
}

/// Scratch floats one image needs: V (`16 · c_in · tiles`) and M (`16 · c_out · tiles`).
pub(super) fn scratch_len(t: &Tiles, c_out: usize, c_in: usize) -> usize {
    XI * t.count() * (c_in + c_out)
}
