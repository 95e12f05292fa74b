//! Tensor operations that candle lacks or cannot differentiate.

use candle_core::{DType, Tensor};

use crate::Result;

/// 2-D max pooling with padding, `(N, C, H, W)` → `(N, C, H_out, W_out)`, as
/// `torch.nn.MaxPool2d(kernel, stride, padding)` (padding with −∞), **differentiable**.
///
/// candle's own `max_pool2d` has no padding and cannot be differentiated when
/// `kernel ≠ stride` (ResNet's 3/2/1 stem pool). On CPU `f32` tensors this is a custom op
/// (parallel over planes) whose backward pass, like torch's, routes each output's gradient
/// to the first maximum of its window. Elsewhere it is built from `narrow`, `reshape` and
/// `maximum`, which all have gradients; the maximum is taken separably (rows, then columns),
/// which equals the 2-D window maximum.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
/// let y = xai_models::ops::max_pool2d(&x, 3, 2, 1)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![5., 7., 13., 15.]);
/// # Ok::<(), xai_models::Error>(())
/// ```
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        return crate::conv::max_pool2d(x, kernel, stride, padding);
    }
    max_pool2d_composite(x, kernel, stride, padding)
}

/// 2-D average pooling with kernel = stride = `kernel` and no padding, `(N, C, H, W)` →
/// `(N, C, ⌊H/k⌋, ⌊W/k⌋)`, as `torch.nn.AvgPool2d(kernel)`; differentiable.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
/// let y = xai_models::ops::avg_pool2d(&x, 2)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![2.5, 4.5, 10.5, 12.5]);
/// # Ok::<(), xai_models::Error>(())
/// ```
pub fn avg_pool2d(x: &Tensor, kernel: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if kernel == 0 || h < kernel || w < kernel {
        return Err(crate::Error::Parameter {
            name: "kernel",
            reason: format!("average pool of {kernel}×{kernel} on a {h}×{w} map"),
        });
    }
    Ok(x.avg_pool2d(kernel)?)
}

/// [`max_pool2d`] from differentiable candle ops (any device and dtype).
pub(crate) fn max_pool2d_composite(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let out = |size: usize| (size + 2 * padding - kernel) / stride + 1;
    let (ho, wo) = (out(h), out(w));
    // Padded so that every window start is in range and each axis splits into `stride` phases.
    let padded_h = (ho + (kernel - 1).div_ceil(stride)) * stride;
    let padded_w = (wo + (kernel - 1).div_ceil(stride)) * stride;
    let x = pad_axis(x, 2, padding, padded_h.max(h + padding) - h - padding)?;
    let x = pad_axis(&x, 3, padding, padded_w.max(w + padding) - w - padding)?;
    let rows = window_max(&x, 2, kernel, stride, ho)?;
    let pooled = window_max(&rows, 3, kernel, stride, wo)?;
    debug_assert_eq!(pooled.dims(), &[n, c, ho, wo]);
    Ok(pooled)
}

fn pad_axis(x: &Tensor, axis: usize, before: usize, after: usize) -> Result<Tensor> {
    let mut parts = Vec::with_capacity(3);
    let mut dims = x.dims().to_vec();
    if before > 0 {
        dims[axis] = before;
        parts.push(Tensor::full(f32::NEG_INFINITY, dims.clone(), x.device())?.to_dtype(x.dtype())?);
    }
    parts.push(x.clone());
    if after > 0 {
        dims[axis] = after;
        parts.push(Tensor::full(f32::NEG_INFINITY, dims, x.device())?.to_dtype(x.dtype())?);
    }
    Ok(Tensor::cat(&parts, axis)?)
}

/// Max over offsets `0..kernel` of the strided views `x[start + k + stride * i]`, i < out.
fn window_max(x: &Tensor, axis: usize, kernel: usize, stride: usize, out: usize) -> Result<Tensor> {
    let mut acc: Option<Tensor> = None;
    for k in 0..kernel {
        let view = x.narrow(axis, k, out * stride)?;
        let mut dims = view.dims().to_vec();
        dims[axis] = out;
        dims.insert(axis + 1, stride);
        let view = view
            .reshape(dims)?
            .narrow(axis + 1, 0, 1)?
            .squeeze(axis + 1)?;
        acc = Some(match acc {
            None => view,
            Some(a) => a.maximum(&view)?,
        });
    }
    let acc = acc.ok_or_else(|| crate::Error::Parameter {
        name: "kernel",
        reason: "must be at least 1".into(),
    })?;
    debug_assert!(acc.dtype() == DType::F32 || acc.dtype().is_float());
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn equals_candle_pool_where_candle_applies() {
        let x = Tensor::randn(0f32, 1.0, (2, 3, 9, 11), &Device::Cpu).unwrap();
        let ours = max_pool2d(&x, 2, 2, 0).unwrap();
        let theirs = x.max_pool2d_with_stride(2, 2).unwrap();
        let d = (ours - theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0);
        let ours = max_pool2d(&x, 3, 2, 0).unwrap();
        let theirs = x.max_pool2d_with_stride(3, 2).unwrap();
        assert_eq!(ours.dims(), theirs.dims());
        let d = (ours - theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0);
    }

    #[test]
    fn padded_pool_has_torch_shape_and_gradient() {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (1, 2, 7, 8), &Device::Cpu).unwrap())
            .unwrap();
        let y = max_pool2d(x.as_tensor(), 3, 2, 1).unwrap();
        assert_eq!(y.dims(), &[1, 2, 4, 4]);
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g = grads.get(x.as_tensor()).unwrap();
        // Each output routes a unit gradient to one input (no ties in random data).
        let total = g.sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(total, 32.0);
    }
}
