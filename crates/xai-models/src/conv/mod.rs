//! Fast, differentiable 2-D convolution and max pooling on the CPU, as candle custom ops.
//!
//! candle's CPU `conv2d` re-lays out its weights on every call, converts every input to NHWC
//! on one thread, copies its output back element by element, and adds bias and ReLU as
//! separate single-threaded passes; its backward pass also computes the gradient with respect
//! to the weights, which explanation methods never need. [`PackedConv`] instead:
//!
//! - keeps the (batch-norm folded) weights as one `[C_out, C_in·k·k]` row-major matrix built
//!   once at load time, and stays in NCHW, so activations need no layout change;
//! - computes each image as one matrix product `W · X` with the `gemm` crate (the kernels
//!   candle's own matmul uses): for a 1×1 stride-1 convolution `X` is the image itself
//!   (`[C_in, H·W]`, no copy); otherwise `X` is the im2col matrix `[C_in·k·k, H_out·W_out]`;
//! - writes straight into the output tensor, which it pre-fills with the bias (plus the
//!   residual, for the last convolution of a ResNet block), so bias and residual are added by
//!   the product itself and ReLU is one pass over data still in cache;
//! - uses every core: images are split over rayon's threads when the batch is large enough,
//!   otherwise the product, im2col and the epilogue are parallel within the image;
//! - is differentiable with respect to its input (not its constant weights): the backward
//!   pass masks the gradient by the ReLU, multiplies by `Wᵀ` and scatters back (col2im).
//! - computes the forward pass of 3×3 stride-1 convolutions with Winograd F(2×2, 3×3) (2.25×
//!   fewer multiplications, transformed weights built once; see [`ConvAlgorithm`] for the
//!   choice and `XAI_CONV_ALGORITHM=direct` to turn it off); their backward pass stays the
//!   direct one above.
//!
//! [`crate::ops::max_pool2d`] is, on CPU `f32` tensors, torch's `MaxPool2d(kernel, stride,
//! padding)` as a custom op with a backward pass that, like torch, routes each output's
//! gradient to the first maximum of its window.
//!
//! These ops run on CPU `f32` tensors only; [`crate::ResNet`] uses them when it is loaded on
//! the CPU and candle's own ops on other devices.

mod kernel;
mod winograd;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

use kernel::{matmul, MatRef, Threads};

use crate::{Error, Result};

/// What can go wrong inside the kernels (reported through candle's error type).
#[derive(Debug, thiserror::Error)]
pub(crate) enum KernelError {
    /// Shapes that do not fit together.
    #[error("xai conv kernel: {0}")]
    Shape(String),
    /// A size that does not fit in memory indices.
    #[error("xai conv kernel: size overflow")]
    Overflow,
    /// A tensor of another dtype than `f32`.
    #[error("xai conv kernel: expects f32 tensors, got {0:?}")]
    DType(DType),
}

impl From<KernelError> for candle_core::Error {
    fn from(e: KernelError) -> Self {
        candle_core::Error::wrap(e)
    }
}

type KResult<T> = std::result::Result<T, KernelError>;

/// How a [`PackedConv`] computes its forward pass (the backward pass is always the direct one).
///
/// The default comes from the environment variable [`ConvAlgorithm::ENV`]
/// (`XAI_CONV_ALGORITHM=auto|direct|winograd`, unset = `auto`), read when a convolution is
/// built; [`PackedConv::with_algorithm`] overrides it per convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvAlgorithm {
    /// Winograd F(2×2, 3×3) for the 3×3 stride-1 convolutions where it measured faster than
    /// the direct product, the direct product elsewhere.
    #[default]
    Auto,
    /// im2col (or the image itself for 1×1) and one matrix product everywhere.
    Direct,
    /// Winograd F(2×2, 3×3) for every 3×3 stride-1 convolution, the direct product elsewhere.
    Winograd,
}

impl ConvAlgorithm {
    /// The environment variable that sets the default: `auto`, `direct` or `winograd`.
    pub const ENV: &'static str = "XAI_CONV_ALGORITHM";

    /// The algorithm [`ConvAlgorithm::ENV`] asks for (`Auto` when it is unset or empty).
    pub fn from_env() -> Result<Self> {
        match std::env::var(Self::ENV) {
            Ok(v) if !v.trim().is_empty() => v.parse(),
            _ => Ok(Self::Auto),
        }
    }
}

impl std::str::FromStr for ConvAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "direct" => Ok(Self::Direct),
            "winograd" => Ok(Self::Winograd),
            other => Err(Error::Parameter {
                name: "XAI_CONV_ALGORITHM",
                reason: format!(
                    "unknown convolution algorithm `{other}`; use auto, direct or winograd (or unset it)"
                ),
            }),
        }
    }
}

/// A 2-D convolution (square kernel, no groups or dilation) with a bias, its weights laid out
/// once for the CPU kernels.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_models::conv::PackedConv;
///
/// let dev = Device::Cpu;
/// let w = Tensor::randn(0f32, 1.0, (8, 3, 3, 3), &dev)?;
/// let b = Tensor::randn(0f32, 1.0, 8, &dev)?;
/// let conv = PackedConv::new(&w, Some(&b), 2, 1)?;
/// let x = Tensor::randn(0f32, 1.0, (2, 3, 16, 16), &dev)?;
/// let y = conv.forward(&x, true)?; // relu(conv2d(x, w, stride 2, padding 1) + b)
/// let want = x.conv2d(&w, 1, 2, 1, 1)?.broadcast_add(&b.reshape((1, 8, 1, 1))?)?.relu()?;
/// let diff = (y - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert!(diff < 1e-4);
/// # Ok::<(), xai_models::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PackedConv {
    /// `[c_out, c_in * k * k]`, row-major (torch's OIHW weight, flattened).
    weight: Arc<[f32]>,
    /// `[c_out]`.
    bias: Arc<[f32]>,
    c_out: usize,
    c_in: usize,
    k: usize,
    stride: usize,
    padding: usize,
    /// Winograd-transformed weights (`[16][c_out][c_in]`) for a 3×3 stride-1 convolution whose
    /// algorithm is not [`ConvAlgorithm::Direct`].
    winograd: Option<Arc<[f32]>>,
    algorithm: ConvAlgorithm,
}

/// The sizes of one call.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn hwo(&self) -> usize {
        self.ho * self.wo
    }
}

/// The contiguous `f32` data of a custom op's argument.
fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> KResult<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        return Err(KernelError::DType(s.dtype()));
    };
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| KernelError::Shape("argument is not contiguous".into()))?;
    data.get(start..end)
        .ok_or_else(|| KernelError::Shape("layout outside of storage".into()))
}

fn dims4(l: &Layout) -> KResult<(usize, usize, usize, usize)> {
    match l.dims() {
        &[a, b, c, d] => Ok((a, b, c, d)),
        d => Err(KernelError::Shape(format!(
            "expected a 4-D tensor, got {d:?}"
        ))),
    }
}

/// Number of threads to use and whether to split the batch over them (else: within images).
fn plan(n: usize) -> (usize, bool) {
    let threads = rayon::current_num_threads().max(1);
    let over_batch = threads > 1 && n > 1 && (n % threads == 0 || n >= 4 * threads);
    (threads, over_batch)
}

/// Runs `f(image, out_chunk, scratch, parallel_within)` for each image's `per` outputs.
fn for_each_image<F>(out: &mut [f32], per: usize, n: usize, f: F) -> KResult<()>
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>, Threads) -> KResult<()> + Sync,
{
    if per == 0 {
        return Ok(());
    }
    let (threads, over_batch) = plan(n);
    if over_batch {
        out.par_chunks_mut(per)
            .enumerate()
            .try_for_each(|(i, o)| with_scratch(|scratch| f(i, o, scratch, Threads::One)))
    } else {
        let inner = if threads > 1 {
            Threads::Rayon(threads)
        } else {
            Threads::One
        };
        with_scratch(|scratch| {
            out.chunks_mut(per)
                .enumerate()
                .try_for_each(|(i, o)| f(i, o, scratch, inner))
        })
    }
}

/// `f(chunk_index, chunk)` over `chunks_mut(size)`, in parallel when `threads` says so.
fn chunks<F>(data: &mut [f32], size: usize, threads: Threads, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    if size == 0 {
        return;
    }
    match threads {
        Threads::One => data.chunks_mut(size).enumerate().for_each(|(i, c)| f(i, c)),
        Threads::Rayon(_) => data
            .par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
    }
}

/// The slice `len` long at the start of `scratch`, growing it if needed (no clearing: every
/// user overwrites all of it).
fn scratch_of(scratch: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    &mut scratch[..len]
}

thread_local! {
    /// Each thread's im2col buffer, kept between calls (it is as large as the largest im2col
    /// matrix of one image the thread has built, e.g. 7 MiB for ResNet at 224×224).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer (a fresh one if it is already in use, e.g. by
/// a rayon task that waits on this thread).
fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut Vec::new()),
    })
}

impl PackedConv {
    /// Lays out `weight` (`[c_out, c_in, k, k]`) and `bias` (`[c_out]`, zero when `None`).
    pub fn new(
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let (c_out, c_in, kh, kw) = weight.dims4()?;
        if kh != kw || kh == 0 || stride == 0 {
            return Err(Error::Parameter {
                name: "weight",
                reason: format!(
                    "PackedConv needs a square, non-empty kernel and stride ≥ 1; got {kh}×{kw}, stride {stride}"
                ),
            });
        }
        let w = weight
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let b = match bias {
            Some(b) => b.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0.0; c_out],
        };
        Self::from_parts(w, b, (c_out, c_in, kh), stride, padding)
    }

    /// From a flattened OIHW weight (`c_out · c_in · k · k` values) and `c_out` biases.
    pub(crate) fn from_parts(
        weight: Vec<f32>,
        bias: Vec<f32>,
        (c_out, c_in, k): (usize, usize, usize),
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        if weight.len() != c_out * c_in * k * k || bias.len() != c_out || k == 0 || stride == 0 {
            return Err(Error::Parameter {
                name: "weight",
                reason: format!(
                    "{} weights and {} biases do not fit ({c_out}, {c_in}, {k}, {k}) with stride {stride}",
                    weight.len(),
                    bias.len()
                ),
            });
        }
        let conv = Self {
            weight: weight.into(),
            bias: bias.into(),
            c_out,
            c_in,
            k,
            stride,
            padding,
            winograd: None,
            algorithm: ConvAlgorithm::Direct,
        };
        Ok(conv.with_algorithm(ConvAlgorithm::from_env()?))
    }

    /// The same convolution computing its forward pass with `algorithm` (the transformed
    /// weights Winograd needs are built here, once, for 3×3 stride-1 convolutions).
    pub fn with_algorithm(mut self, algorithm: ConvAlgorithm) -> Self {
        self.algorithm = algorithm;
        let wants = self.k == 3 && self.stride == 1 && algorithm != ConvAlgorithm::Direct;
        if !wants {
            self.winograd = None;
        } else if self.winograd.is_none() {
            self.winograd =
                Some(winograd::transform_weights(&self.weight, self.c_out, self.c_in).into());
        }
        self
    }

    /// The algorithm chosen for the forward pass.
    pub fn algorithm(&self) -> ConvAlgorithm {
        self.algorithm
    }

    /// The Winograd weights when this call's forward pass should use them.
    fn winograd_for(&self, g: &Geom) -> Option<&[f32]> {
        let u = self.winograd.as_deref().filter(|_| self.c_in > 0)?;
        let take = match self.algorithm {
            ConvAlgorithm::Direct => false,
            ConvAlgorithm::Winograd => true,
            ConvAlgorithm::Auto => winograd::pays_off(self.c_out, self.c_in, g),
        };
        take.then_some(u)
    }

    /// `(c_out, c_in, k)`.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.c_out, self.c_in, self.k)
    }

    /// `act(conv2d(x) + bias)` for `x` of shape `(N, c_in, H, W)`, with `act` ReLU when `relu`,
    /// else the identity. Differentiable with respect to `x`.
    pub fn forward(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let x = x.contiguous()?;
        Ok(x.apply_op1(ConvOp {
            conv: self.clone(),
            relu,
        })?)
    }

    /// `act(conv2d(x) + bias + residual)`, `residual` of the output's shape (a ResNet block's
    /// shortcut). Differentiable with respect to `x` and `residual`.
    pub fn forward_add(&self, x: &Tensor, residual: &Tensor, relu: bool) -> Result<Tensor> {
        let x = x.contiguous()?;
        let residual = residual.contiguous()?;
        Ok(x.apply_op2(
            &residual,
            ConvOp {
                conv: self.clone(),
                relu,
            },
        )?)
    }

    fn geom(&self, (n, c, h, w): (usize, usize, usize, usize)) -> KResult<Geom> {
        if c != self.c_in {
            return Err(KernelError::Shape(format!(
                "input has {c} channels, the convolution expects {}",
                self.c_in
            )));
        }
        let out = |size: usize| {
            (size + 2 * self.padding)
                .checked_sub(self.k)
                .map(|s| s / self.stride + 1)
        };
        let (Some(ho), Some(wo)) = (out(h), out(w)) else {
            return Err(KernelError::Shape(format!(
                "input {h}×{w} (padding {}) is smaller than the {}×{} kernel",
                self.padding, self.k, self.k
            )));
        };
        Ok(Geom { n, h, w, ho, wo })
    }

    /// Whether the input itself is the right-hand matrix of the product (1×1, stride 1).
    fn is_direct(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.padding == 0
    }

    /// For kernel column `kx`: the output columns `lo..hi` that read inside the input, and the
    /// input column of output column `ox` is `ox * stride + kx - padding`.
    fn valid_cols(&self, kx: usize, w: usize, wo: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.padding);
        let lo = if kx >= p { 0 } else { (p - kx).div_ceil(s) };
        let hi = if w + p > kx {
            ((w + p - kx - 1) / s + 1).min(wo)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// The input row of output row `oy` for kernel row `ky`, if inside the input.
    fn in_row(&self, oy: usize, ky: usize, h: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.padding)
            .filter(|&iy| iy < h)
    }

    /// The `k·k` im2col rows of one input channel `xc` (`H·W`) into `col` (`k·k·H_out·W_out`).
    fn im2col_channel(&self, g: &Geom, xc: &[f32], col: &mut [f32]) {
        let (k, s, p, hwo) = (self.k, self.stride, self.padding, g.hwo());
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut col[(ky * k + kx) * hwo..][..hwo];
                let (lo, hi) = self.valid_cols(kx, g.w, g.wo);
                for oy in 0..g.ho {
                    let dst = &mut row[oy * g.wo..][..g.wo];
                    let Some(iy) = self.in_row(oy, ky, g.h) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let src = &xc[iy * g.w..][..g.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if s == 1 {
                        let start = lo + kx - p;
                        dst[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (ox, d) in dst[lo..hi].iter_mut().enumerate() {
                            *d = src[(lo + ox) * s + kx - p];
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Self::im2col_channel`]: `dxc = Σ` scattered rows of `col`.
    fn col2im_channel(&self, g: &Geom, col: &[f32], dxc: &mut [f32]) {
        let (k, s, p, hwo) = (self.k, self.stride, self.padding, g.hwo());
        dxc.fill(0.0);
        for ky in 0..k {
            for kx in 0..k {
                let row = &col[(ky * k + kx) * hwo..][..hwo];
                let (lo, hi) = self.valid_cols(kx, g.w, g.wo);
                if lo >= hi {
                    continue;
                }
                for oy in 0..g.ho {
                    let Some(iy) = self.in_row(oy, ky, g.h) else {
                        continue;
                    };
                    let src = &row[oy * g.wo..][lo..hi];
                    let dst = &mut dxc[iy * g.w..][..g.w];
                    if s == 1 {
                        let start = lo + kx - p;
                        for (d, v) in dst[start..start + (hi - lo)].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (ox, v) in src.iter().enumerate() {
                            dst[(lo + ox) * s + kx - p] += v;
                        }
                    }
                }
            }
        }
    }

    /// One image: `out = act(W · X + bias [+ residual])`.
    fn forward_image(
        &self,
        g: &Geom,
        x: &[f32],
        out: &mut [f32],
        (residual, relu): (Option<&[f32]>, bool),
        scratch: &mut Vec<f32>,
        threads: Threads,
    ) -> KResult<()> {
        let hwo = g.hwo();
        let kk = self.k * self.k;
        let bias = &self.bias;
        chunks(out, hwo, threads, |co, o| match residual {
            Some(r) => {
                let b = bias[co];
                for (d, r) in o.iter_mut().zip(&r[co * hwo..(co + 1) * hwo]) {
                    *d = r + b;
                }
            }
            None => o.fill(bias[co]),
        });
        let wmat = MatRef::row_major(&self.weight, self.c_out, self.c_in * kk);
        if self.is_direct() {
            matmul(
                out,
                wmat,
                MatRef::row_major(x, self.c_in, hwo),
                true,
                threads,
            )?;
        } else {
            let col = scratch_of(scratch, self.c_in * kk * hwo);
            let hw = g.hw();
            chunks(col, kk * hwo, threads, |ci, c| {
                self.im2col_channel(g, &x[ci * hw..(ci + 1) * hw], c)
            });
            matmul(
                out,
                wmat,
                MatRef::row_major(col, self.c_in * kk, hwo),
                true,
                threads,
            )?;
        }
        if relu {
            chunks(out, hwo, threads, |_, o| {
                o.iter_mut().for_each(|v| *v = v.max(0.0))
            });
        }
        Ok(())
    }

    /// The forward pass on contiguous NCHW data.
    fn forward_slices(
        &self,
        x: &[f32],
        dims: (usize, usize, usize, usize),
        residual: Option<&[f32]>,
        relu: bool,
    ) -> KResult<(Vec<f32>, Shape)> {
        let g = self.geom(dims)?;
        let per_in = self.c_in * g.hw();
        let per_out = self.c_out * g.hwo();
        let total = g.n.checked_mul(per_out).ok_or(KernelError::Overflow)?;
        if x.len() != g.n * per_in || residual.is_some_and(|r| r.len() != total) {
            return Err(KernelError::Shape(
                "input or residual length does not fit".into(),
            ));
        }
        let shape = Shape::from((g.n, self.c_out, g.ho, g.wo));
        if let Some(u) = self.winograd_for(&g) {
            let t = winograd::Tiles::new(g.h, g.w, g.ho, g.wo, self.padding);
            let out = winograd::forward(
                &t,
                (self.c_out, self.c_in),
                u,
                &self.bias,
                x,
                g.n,
                (residual, relu),
            )?;
            return Ok((out, shape));
        }
        let mut out = vec![0.0f32; total];
        for_each_image(&mut out, per_out, g.n, |i, o, scratch, threads| {
            let r = residual.map(|r| &r[i * per_out..(i + 1) * per_out]);
            self.forward_image(
                &g,
                &x[i * per_in..(i + 1) * per_in],
                o,
                (r, relu),
                scratch,
                threads,
            )
        })?;
        Ok((out, shape))
    }

    /// The gradient with respect to the input, given the gradient `gy` of the convolution's
    /// output (before bias and activation), for an input of spatial size `h × w`.
    fn input_grad_slices(
        &self,
        gy: &[f32],
        (n, c, ho, wo): (usize, usize, usize, usize),
        (h, w): (usize, usize),
    ) -> KResult<(Vec<f32>, Shape)> {
        let g = self.geom((n, self.c_in, h, w))?;
        if c != self.c_out || (g.ho, g.wo) != (ho, wo) || gy.len() != n * c * ho * wo {
            return Err(KernelError::Shape(format!(
                "gradient of shape ({n}, {c}, {ho}, {wo}) does not fit the convolution output ({n}, {}, {}, {})",
                self.c_out, g.ho, g.wo
            )));
        }
        let kk = self.k * self.k;
        let (per_in, per_out, hwo) = (self.c_in * g.hw(), self.c_out * g.hwo(), g.hwo());
        let mut dx = vec![0.0f32; n * per_in];
        let wt = MatRef::row_major(&self.weight, self.c_out, self.c_in * kk).t();
        for_each_image(&mut dx, per_in, n, |i, dxi, scratch, threads| {
            let gyi = MatRef::row_major(&gy[i * per_out..(i + 1) * per_out], self.c_out, hwo);
            if self.is_direct() {
                return matmul(dxi, wt, gyi, false, threads);
            }
            let col = scratch_of(scratch, self.c_in * kk * hwo);
            matmul(col, wt, gyi, false, threads)?;
            let col = &*col;
            chunks(dxi, g.hw(), threads, |ci, d| {
                self.col2im_channel(&g, &col[ci * kk * hwo..(ci + 1) * kk * hwo], d)
            });
            Ok(())
        })?;
        Ok((dx, Shape::from((n, self.c_in, h, w))))
    }
}

/// The forward op: one argument (input) or two (input, residual).
struct ConvOp {
    conv: PackedConv,
    relu: bool,
}

impl ConvOp {
    /// The gradient of the pre-activation sum, given the gradient of the op's result.
    fn masked(&self, res: &Tensor, grad: &Tensor) -> candle_core::Result<Tensor> {
        let grad = grad.contiguous()?;
        if self.relu {
            grad.apply_op2_no_bwd(&res.contiguous()?, &ReluMask)
        } else {
            Ok(grad)
        }
    }

    fn input_grad(&self, arg: &Tensor, g: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = arg.dims4()?;
        g.apply_op1_no_bwd(&ConvInputGrad {
            conv: self.conv.clone(),
            h,
            w,
        })
    }
}

impl CustomOp1 for ConvOp {
    fn name(&self) -> &'static str {
        "xai-conv2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let (out, shape) = self.conv.forward_slices(x, dims4(l)?, None, self.relu)?;
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = self.masked(res, grad)?;
        Ok(Some(self.input_grad(arg, &g)?))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "xai-conv2d-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1)?;
        let r = contiguous_f32(s2, l2)?;
        let (out, shape) = self
            .conv
            .forward_slices(x, dims4(l1)?, Some(r), self.relu)?;
        if shape.dims() != l2.dims() {
            return Err(KernelError::Shape(format!(
                "residual of shape {:?} for an output of shape {:?}",
                l2.dims(),
                shape.dims()
            ))
            .into());
        }
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        _arg2: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.masked(res, grad)?;
        let dx = self.input_grad(arg1, &g)?;
        Ok((Some(dx), Some(g)))
    }
}

/// `∂/∂x` of a convolution, applied to the gradient of its output.
struct ConvInputGrad {
    conv: PackedConv,
    h: usize,
    w: usize,
}

impl CustomOp1 for ConvInputGrad {
    fn name(&self) -> &'static str {
        "xai-conv2d-input-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let gy = contiguous_f32(s, l)?;
        let (dx, shape) = self
            .conv
            .input_grad_slices(gy, dims4(l)?, (self.h, self.w))?;
        Ok((CpuStorage::F32(dx), shape))
    }
}

/// `(grad, result) ↦ grad · [result > 0]`: the gradient through a ReLU, from its output.
struct ReluMask;

impl CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "xai-relu-mask"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = contiguous_f32(s1, l1)?;
        let r = contiguous_f32(s2, l2)?;
        if l1.dims() != l2.dims() {
            return Err(KernelError::Shape("relu mask of another shape".into()).into());
        }
        const CHUNK: usize = 1 << 14;
        let mut out = vec![0.0f32; g.len()];
        out.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(r.par_chunks(CHUNK)))
            .for_each(|(o, (g, r))| {
                for ((o, g), r) in o.iter_mut().zip(g).zip(r) {
                    *o = if *r > 0.0 { *g } else { 0.0 };
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Max pooling as torch's `MaxPool2d(kernel, stride, padding)` (padding with −∞), on CPU
/// `f32` tensors; differentiable with respect to `x`. Called by [`crate::ops::max_pool2d`].
pub(crate) fn max_pool2d(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if kernel == 0 || stride == 0 {
        return Err(Error::Parameter {
            name: "kernel",
            reason: "kernel and stride must be at least 1".into(),
        });
    }
    let x = x.contiguous()?;
    Ok(x.apply_op1(MaxPool {
        kernel,
        stride,
        padding,
    })?)
}

#[derive(Debug, Clone, Copy)]
struct MaxPool {
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl MaxPool {
    fn out_dims(&self, h: usize, w: usize) -> KResult<(usize, usize)> {
        let out = |size: usize| {
            (size + 2 * self.padding)
                .checked_sub(self.kernel)
                .map(|s| s / self.stride + 1)
        };
        match (out(h), out(w)) {
            (Some(ho), Some(wo)) => Ok((ho, wo)),
            _ => Err(KernelError::Shape(format!(
                "input {h}×{w} is smaller than the pooling window"
            ))),
        }
    }

    /// The window of output `(oy, ox)` clipped to the input: rows and columns.
    fn window(&self, o: usize, size: usize) -> std::ops::Range<usize> {
        let start = (o * self.stride).saturating_sub(self.padding);
        let end = (o * self.stride + self.kernel)
            .saturating_sub(self.padding)
            .min(size);
        start..end.max(start)
    }

    /// The index in the plane (`h × w`) of the first maximum of a window (row-major scan;
    /// NaN wins, as in torch), and its value; `None` for an empty window.
    fn argmax(
        &self,
        plane: &[f32],
        w: usize,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) -> Option<(usize, f32)> {
        if rows.is_empty() || cols.is_empty() {
            return None;
        }
        let mut best = (rows.start * w + cols.start, f32::NEG_INFINITY);
        for iy in rows {
            let row = &plane[iy * w..(iy + 1) * w];
            for ix in cols.clone() {
                let v = row[ix];
                if v > best.1 || v.is_nan() {
                    best = (iy * w + ix, v);
                    if v.is_nan() {
                        return Some(best);
                    }
                }
            }
        }
        Some(best)
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "xai-max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let (n, c, h, w) = dims4(l)?;
        let (ho, wo) = self.out_dims(h, w)?;
        let mut out = vec![0.0f32; n * c * ho * wo];
        if ho * wo > 0 && h * w > 0 {
            out.par_chunks_mut(ho * wo)
                .zip(x.par_chunks(h * w))
                .for_each(|(o, plane)| {
                    for oy in 0..ho {
                        let rows = self.window(oy, h);
                        for ox in 0..wo {
                            o[oy * wo + ox] = self
                                .argmax(plane, w, rows.clone(), self.window(ox, w))
                                .map_or(f32::NEG_INFINITY, |(_, v)| v);
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&grad, &MaxPoolGrad(*self))?))
    }
}

/// `(x, ∂y) ↦ ∂x` of [`MaxPool`].
struct MaxPoolGrad(MaxPool);

impl CustomOp2 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "xai-max-pool2d-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let pool = self.0;
        let x = contiguous_f32(s1, l1)?;
        let gy = contiguous_f32(s2, l2)?;
        let (n, c, h, w) = dims4(l1)?;
        let (ho, wo) = pool.out_dims(h, w)?;
        if l2.dims() != [n, c, ho, wo] {
            return Err(KernelError::Shape("pooling gradient of another shape".into()).into());
        }
        let mut dx = vec![0.0f32; n * c * h * w];
        if ho * wo > 0 && h * w > 0 {
            dx.par_chunks_mut(h * w)
                .zip(x.par_chunks(h * w).zip(gy.par_chunks(ho * wo)))
                .for_each(|(d, (plane, g))| {
                    for oy in 0..ho {
                        let rows = pool.window(oy, h);
                        for ox in 0..wo {
                            if let Some((i, _)) =
                                pool.argmax(plane, w, rows.clone(), pool.window(ox, w))
                            {
                                d[i] += g[oy * wo + ox];
                            }
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests;
