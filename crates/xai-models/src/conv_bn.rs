//! Convolutions with their batch-norm folded in, shared by the ResNets ([`crate::ResNet`],
//! CLIP's [`crate::clip::ModifiedResNet`]): the models are for inference and explanation, never
//! training, so eval-mode batch-norm is an affine map per channel that can be merged into the
//! convolution's weights and bias once, at load time.

use candle_core::{Device, Tensor};

use crate::conv::PackedConv;
use crate::weights::Checkout;
use crate::Result;

/// torchvision's (and CLIP's) batch-norm epsilon.
const BN_EPS: f64 = 1e-5;

/// A convolution with its batch-norm folded in: `conv(x, w') + b'`.
///
/// On the CPU it runs as [`PackedConv`] (weights laid out once, bias, residual and ReLU fused,
/// see [`crate::conv`]); on other devices as candle's `conv2d` and separate ops.
#[derive(Debug, Clone)]
pub(crate) enum ConvBn {
    Packed(PackedConv),
    Candle {
        weight: Tensor,
        bias: Tensor,
        stride: usize,
        padding: usize,
    },
}

impl ConvBn {
    pub(crate) fn load(
        ck: &mut Checkout<'_>,
        conv: &str,
        bn: &str,
        (cin, cout, k): (usize, usize, usize),
        stride: usize,
        device: &Device,
    ) -> Result<Self> {
        let w = ck.take(&format!("{conv}.weight"), &[cout, cin, k, k])?;
        let gamma = ck.take(&format!("{bn}.weight"), &[cout])?;
        let beta = ck.take(&format!("{bn}.bias"), &[cout])?;
        let mean = ck.take(&format!("{bn}.running_mean"), &[cout])?;
        let var = ck.take(&format!("{bn}.running_var"), &[cout])?;
        let [gamma, beta, mean, var] =
            [gamma, beta, mean, var].map(|t| t.to_vec1::<f32>().unwrap_or_default());
        let w = w.flatten_all()?.to_vec1::<f32>().unwrap_or_default();
        let padding = k / 2;
        if gamma.len() != cout || w.len() != cout * cin * k * k {
            // A placeholder from a missing tensor; the checkout reports it.
            return Self::build(
                vec![0.0; cout * cin * k * k],
                vec![0.0; cout],
                (cout, cin, k),
                stride,
                padding,
                device,
            );
        }
        // Folded in f64 so that the result is as close as possible to the unfused network.
        let scale: Vec<f64> = gamma
            .iter()
            .zip(&var)
            .map(|(&g, &v)| g as f64 / (v as f64 + BN_EPS).sqrt())
            .collect();
        let bias: Vec<f32> = (0..cout)
            .map(|c| (beta[c] as f64 - mean[c] as f64 * scale[c]) as f32)
            .collect();
        let per_out = cin * k * k;
        let folded: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(i, &x)| (x as f64 * scale[i / per_out]) as f32)
            .collect();
        Self::build(folded, bias, (cout, cin, k), stride, padding, device)
    }

    fn build(
        weight: Vec<f32>,
        bias: Vec<f32>,
        (cout, cin, k): (usize, usize, usize),
        stride: usize,
        padding: usize,
        device: &Device,
    ) -> Result<Self> {
        if device.is_cpu() {
            return Ok(Self::Packed(PackedConv::from_parts(
                weight,
                bias,
                (cout, cin, k),
                stride,
                padding,
            )?));
        }
        Ok(Self::Candle {
            weight: Tensor::from_vec(weight, (cout, cin, k, k), device)?,
            bias: Tensor::from_vec(bias, (1, cout, 1, 1), device)?,
            stride,
            padding,
        })
    }

    /// `conv(x) + b`, then ReLU when `relu`.
    pub(crate) fn forward(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        match self {
            Self::Packed(conv) => conv.forward(x, relu),
            Self::Candle {
                weight,
                bias,
                stride,
                padding,
            } => {
                let y = x
                    .conv2d(weight, *padding, *stride, 1, 1)?
                    .broadcast_add(bias)?;
                Ok(if relu { y.relu()? } else { y })
            }
        }
    }

    /// `relu(conv(x) + b + shortcut)`: the end of a residual block.
    pub(crate) fn forward_add_relu(&self, x: &Tensor, shortcut: &Tensor) -> Result<Tensor> {
        match self {
            Self::Packed(conv) => conv.forward_add(x, shortcut, true),
            Self::Candle { .. } => Ok((self.forward(x, false)? + shortcut)?.relu()?),
        }
    }
}
