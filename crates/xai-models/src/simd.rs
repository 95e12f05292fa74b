//! Runtime CPU-feature dispatch for hot loops, without `unsafe` in our code.
//!
//! Rust compiles for the x86-64 baseline (SSE2: two `f64` or four `f32` lanes per vector).
//! [`vectorize`] runs a closure compiled again for AVX-512 (x86-64-v4) or AVX2 + FMA (v3),
//! whichever the CPU has (through `pulp`, which candle's and our matrix kernels already use;
//! the workspace enables gemm's `x86-v4` feature, which turns on pulp's AVX-512 level), so
//! plain loops in the closure are auto-vectorised four, eight or sixteen lanes wide.
//!
//! Results are bit-identical to the baseline build: Rust never contracts `a * b + c` into a
//! fused multiply-add on its own and never reorders floating-point reductions, so widening the
//! lanes changes how many elements one instruction handles, not any rounding. Parity tests that
//! hold a loop to a reference bit for bit stay valid on every CPU.
//!
//! Only code inlined into the wide wrapper gets the wider instructions. **Mark the closure
//! itself `#[inline(always)]`** (stable Rust allows the attribute on a closure passed as an
//! argument): without it, release builds call the closure body compiled for the baseline
//! (`objdump -d` shows no `ymm` registers in it). Helpers the loop calls need
//! `#[inline(always)]` too.
//!
//! ```
//! let xs: Vec<f64> = (0..1000).map(|i| i as f64).collect();
//! let squares: Vec<f64> =
//!     xai_models::simd::vectorize(#[inline(always)] || xs.iter().map(|x| x * x).collect());
//! assert_eq!(squares[12], 144.0);
//! ```

/// Runs `f` compiled for the best instruction set this CPU offers (AVX-512 or AVX2 + FMA where
/// present, the baseline otherwise). See the [module docs](self) for what that guarantees.
#[inline(always)]
pub fn vectorize<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// The explicit SIMD interface for loops the auto-vectoriser cannot keep in registers: a type
/// implementing [`WithSimd`] gets a [`Simd`] token (AVX-512, AVX2 + FMA or one scalar lane,
/// whichever the CPU offers) whose `*_f32s`, `*_u32s`… operations work on `S::F32_LANES`
/// lanes at a time. The same code is compiled once per instruction set.
///
/// Not every operation is inlined into the wide code: `pulp`'s horizontal reductions
/// (`reduce_min_f32s` and the like) are calls compiled for the baseline, dozens of times
/// slower than the lane-wise operations. Keep them out of inner loops.
pub use pulp::{Simd, WithSimd};

/// Runs `op` with the [`Simd`] token of the best instruction set this CPU offers.
///
/// ```
/// use xai_models::simd::{dispatch, Simd, WithSimd};
///
/// struct Sum<'a>(&'a [f32]);
/// impl WithSimd for Sum<'_> {
///     type Output = f32;
///     #[inline(always)]
///     fn with_simd<S: Simd>(self, simd: S) -> f32 {
///         let (head, tail) = S::as_simd_f32s(self.0);
///         let wide = head.iter().fold(simd.splat_f32s(0.0), |acc, &v| simd.add_f32s(acc, v));
///         simd.reduce_sum_f32s(wide) + tail.iter().sum::<f32>()
///     }
/// }
/// let xs: Vec<f32> = (0..100).map(|i| i as f32).collect();
/// assert_eq!(dispatch(Sum(&xs)), 4950.0);
/// ```
#[inline(always)]
pub fn dispatch<Op: WithSimd>(op: Op) -> Op::Output {
    pulp::Arch::new().dispatch(op)
}

#[cfg(test)]
mod tests {
    use super::vectorize;

    #[test]
    fn same_bits_as_the_baseline_loop() {
        let xs: Vec<f64> = (0..4099).map(|i| (i as f64 * 0.37).sin() * 1e3).collect();
        let plain: Vec<f64> = xs.iter().map(|x| x * 1.000_000_1 + 0.25 * x).collect();
        let wide: Vec<f64> = vectorize(
            #[inline(always)]
            || xs.iter().map(|x| x * 1.000_000_1 + 0.25 * x).collect(),
        );
        assert!(plain
            .iter()
            .zip(&wide)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        let sum_plain: f64 = xs.iter().sum();
        let sum_wide: f64 = vectorize(
            #[inline(always)]
            || xs.iter().sum(),
        );
        assert_eq!(sum_plain.to_bits(), sum_wide.to_bits());
    }
}
