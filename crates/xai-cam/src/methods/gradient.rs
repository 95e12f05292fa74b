//! The gradient methods (and EigenCAM, which needs only the activation).
//!
//! Notation: `A` is the target layer's activation `(batch, K, h, w)`, `G = ∂(Σ_b s_b)/∂A` its
//! gradient, `w_bk` a channel weight; the raw map is `Σ_k w_bk A_bk` unless said otherwise.

use ndarray::Array3;

use crate::method::{project, CamMethod, LayerContext, Needs};
use crate::Result;

/// Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1–2): `w_k = mean_ij G_kij`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_cam::{Cam, GradCam, Targets};
/// let model = xai_models::testing::random_resnet(
///     xai_models::ResNetConfig::resnet18().with_width(4).with_classes(10), 0, &Device::Cpu)?;
/// let x = Tensor::randn(0f32, 1.0, (1, 3, 64, 64), &Device::Cpu)?;
/// let cam = Cam::new(&model, GradCam)?.compute(&x, &Targets::TopClass)?;
/// let map = cam.normalise();                       // (1, 64, 64) in [0, 1)
/// assert_eq!(map.dim(), (1, 64, 64));
/// # Ok::<(), xai_cam::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GradCam;

impl CamMethod for GradCam {
    fn name(&self) -> &'static str {
        "gradcam"
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        let w = cx.gradient()?.mean((2, 3))?;
        cx.weighted_map(&w)
    }
}

/// Grad-CAM++ (Chattopadhay et al., WACV 2018, Eq. 19 with raw gradients, as the reference):
/// `α_kij = G² / (2G² + Σ_ab A_kab · G³ + 1e-6)`, `α = 0` where `G = 0`,
/// `w_k = Σ_ij α_kij · max(G_kij, 0)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GradCamPlusPlus;

impl CamMethod for GradCamPlusPlus {
    fn name(&self) -> &'static str {
        "gradcam++"
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        let g = cx.gradient()?;
        let g2 = g.sqr()?;
        let g3 = (&g2 * g)?;
        let sum_a = cx.activation.sum_keepdim((2, 3))?;
        let denom = ((&g2 * 2.0)? + g3.broadcast_mul(&sum_a)?)?.affine(1.0, 1e-6)?;
        let alpha = (&g2 / denom)?;
        // α = 0 wherever G == 0 exactly.
        let nonzero = g.ne(0f32)?;
        let alpha = nonzero.where_cond(&alpha, &alpha.zeros_like()?)?;
        let w = (alpha * g.relu()?)?.sum((2, 3))?;
        cx.weighted_map(&w)
    }
}

/// XGrad-CAM (Fu et al., BMVC 2020, Eq. 7): `w_k = Σ_ij G_kij A_kij / (Σ_ij A_kij + 1e-7)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct XGradCam;

impl CamMethod for XGradCam {
    fn name(&self) -> &'static str {
        "xgradcam"
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        let g = cx.gradient()?;
        let sum_a = cx.activation.sum_keepdim((2, 3))?.affine(1.0, 1e-7)?;
        let w = (g * cx.activation)?.broadcast_div(&sum_a)?.sum((2, 3))?;
        cx.weighted_map(&w)
    }
}

/// HiResCAM (Draelos & Carin, 2020, Eq. 4): `Σ_k G_k ⊙ A_k`, no pooling of the gradient.
#[derive(Debug, Clone, Copy, Default)]
pub struct HiResCam;

impl CamMethod for HiResCam {
    fn name(&self) -> &'static str {
        "hirescam"
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        let e = (cx.gradient()? * cx.activation)?;
        cx.elementwise_map(&e)
    }
}

/// LayerCAM (Jiang et al., IEEE TIP 2021, Eq. 5): `Σ_k max(G_k, 0) ⊙ A_k`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerCam;

impl CamMethod for LayerCam {
    fn name(&self) -> &'static str {
        "layercam"
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        let e = (cx.gradient()?.relu()? * cx.activation)?;
        cx.elementwise_map(&e)
    }
}

/// EigenCAM (Muhammad & Yeasin, IJCNN 2020): the projection of `A` on its first principal
/// component ([`crate::eigen::projection`]; sign per [`crate::EigenSign`]). No gradients;
/// `eigen_smooth` changes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct EigenCam;

impl CamMethod for EigenCam {
    fn name(&self) -> &'static str {
        "eigencam"
    }
    fn needs(&self) -> Needs {
        Needs::Activations
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        project(cx.activation, cx.eigen_sign)
    }
}

/// EigenGradCAM (the reference's variant of EigenCAM): the projection of `G ⊙ A` on its
/// first principal component.
#[derive(Debug, Clone, Copy, Default)]
pub struct EigenGradCam;

impl CamMethod for EigenGradCam {
    fn name(&self) -> &'static str {
        "eigengradcam"
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        project(&(cx.gradient()? * cx.activation)?, cx.eigen_sign)
    }
}
