//! The one place in `xai-models` with `unsafe` code: a checked, safe wrapper around the `gemm`
//! crate's matrix product (the kernels candle's own CPU matmul uses).
//!
//! `gemm::gemm` takes raw pointers and strides. [`matmul`] takes slices, checks every index
//! the product can touch against the slice lengths before the call, and only accepts a
//! destination that is a contiguous row-major block of a `&mut` slice, so that no two of its
//! elements alias and it cannot alias the inputs.
#![allow(unsafe_code)]

use super::KernelError;

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major `rows × cols` matrix at the start of `data`.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (a view, no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Whether every element index lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.rs)
            .and_then(|a| (self.cols - 1).checked_mul(self.cs).map(|b| (a, b)))
            .and_then(|(a, b)| a.checked_add(b));
        matches!(last, Some(l) if l < self.data.len())
    }
}

/// How the product may use threads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Threads {
    /// On the calling thread only (the caller parallelises over something else).
    One,
    /// On up to this many rayon threads.
    Rayon(usize),
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, where `dst` is the contiguous
/// row-major `lhs.rows × rhs.cols` matrix at the start of `dst`.
pub(crate) fn matmul(
    dst: &mut [f32],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    threads: Threads,
) -> Result<(), KernelError> {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    if rhs.rows != k {
        return Err(KernelError::Shape(format!(
            "matmul of ({m}×{k}) by ({}×{n})",
            rhs.rows
        )));
    }
    let dst_len = m.checked_mul(n).ok_or(KernelError::Overflow)?;
    if dst.len() < dst_len || !lhs.in_bounds() || !rhs.in_bounds() {
        return Err(KernelError::Shape(format!(
            "matmul ({m}×{k}) by ({k}×{n}) out of bounds: dst {}, lhs {}, rhs {}",
            dst.len(),
            lhs.data.len(),
            rhs.data.len()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst[..dst_len].fill(0.0);
        }
        return Ok(());
    }
    let to_isize = |v: usize| isize::try_from(v).map_err(|_| KernelError::Overflow);
    let (lhs_rs, lhs_cs) = (to_isize(lhs.rs)?, to_isize(lhs.cs)?);
    let (rhs_rs, rhs_cs) = (to_isize(rhs.rs)?, to_isize(rhs.cs)?);
    let dst_rs = to_isize(n)?;
    let parallelism = match threads {
        Threads::Rayon(t) if t > 1 => gemm::Parallelism::Rayon(t),
        _ => gemm::Parallelism::None,
    };
    // SAFETY:
    // - `dst` is a live `&mut [f32]` of at least `m * n` elements (checked above); gemm writes
    //   exactly the elements `i * n + j` for `i < m`, `j < n`, all inside it and pairwise
    //   distinct (row stride `n`, column stride 1).
    // - `lhs` and `rhs` are live shared slices, so they cannot overlap the exclusively borrowed
    //   `dst`; gemm only reads them, at `i * rs + j * cs` for `i < rows`, `j < cols`, and
    //   `in_bounds` checked that the largest such index is inside each slice (all strides are
    //   non-negative, so the largest index is the last element's).
    // - The strides fit in `isize` (checked by `to_isize`) and `m, n, k > 0`.
    // - `T = f32` is one of the types gemm supports, so it does not panic on the type.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs,
            accumulate,
            lhs.data.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.data.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_and_accumulates() {
        let (m, n, k) = (7, 13, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5).collect();
        let want = naive(&a, &b, m, n, k);
        let mut c = vec![1.0; m * n];
        for threads in [Threads::One, Threads::Rayon(2)] {
            matmul(
                &mut c,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                false,
                threads,
            )
            .expect("matmul");
            assert_eq!(c, want);
        }
        matmul(
            &mut c,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            true,
            Threads::One,
        )
        .expect("matmul");
        let twice: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
        assert_eq!(c, twice);
        // A transposed view: (aᵀ)ᵀ = a.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        matmul(
            &mut c,
            MatRef::row_major(&at, k, m).t(),
            MatRef::row_major(&b, k, n),
            false,
            Threads::One,
        )
        .expect("matmul");
        assert_eq!(c, want);
    }

    #[test]
    fn rejects_out_of_bounds_views() {
        let a = vec![0.0f32; 6];
        let mut c = vec![0.0f32; 4];
        let bad = MatRef::row_major(&a, 2, 4); // needs 8 elements
        let ok = MatRef::row_major(&a, 4, 1);
        assert!(matmul(&mut c, bad, ok, false, Threads::One).is_err());
        let mut small = vec![0.0f32; 1];
        let l = MatRef::row_major(&a, 2, 3);
        let r = MatRef::row_major(&a, 3, 2);
        assert!(matmul(&mut small, l, r, false, Threads::One).is_err());
    }
}
