//! The trait every CAM method implements, the context the driver hands it, and the method
//! names the CLI accepts.

use std::str::FromStr;

use candle_core::Tensor;
use ndarray::{Array3, Array4};
use xai_models::Backbone;

use crate::eigen::{projection, EigenSign};
use crate::targets::ImageTargets;
use crate::{Error, Result};

/// What a method needs from the driver for each target layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The activation and its gradient with respect to the target score (one backward pass).
    Gradients,
    /// The activation only (no backward pass); the method may run the model itself.
    Activations,
}

/// Progress of a method that runs the model many times (AblationCAM, ScoreCAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    /// The method's name.
    pub method: &'static str,
    /// The target layer.
    pub layer: &'a str,
    /// Model evaluations (ablations or masks) done so far for this layer.
    pub done: usize,
    /// Model evaluations this layer needs in all.
    pub total: usize,
}

/// Everything a method sees for one target layer of one batch.
pub struct LayerContext<'a> {
    /// The model.
    pub model: &'a dyn Backbone,
    /// The preprocessed input batch `(batch, 3, H, W)`.
    pub input: &'a Tensor,
    /// The model output on `input` (no gradient), `(batch, classes)`.
    pub output: &'a Tensor,
    /// The target layer's name.
    pub layer: &'a str,
    /// The target layer's activation `(batch, channels, h, w)`, detached.
    pub activation: &'a Tensor,
    /// `∂(Σ_b target_b)/∂activation`, when the method [`Needs::Gradients`].
    pub gradient: Option<&'a Tensor>,
    /// One target per image.
    pub targets: &'a ImageTargets<'a>,
    /// Replace the channel sum by the first-principal-component projection (the reference's
    /// `eigen_smooth`).
    pub eigen_smooth: bool,
    /// The sign convention of every projection.
    pub eigen_sign: EigenSign,
    /// Called as a method makes progress, when set.
    pub progress: Option<&'a dyn Fn(Progress<'_>)>,
}

impl LayerContext<'_> {
    /// The gradient, or an error if the driver computed none.
    pub fn gradient(&self) -> Result<&Tensor> {
        self.gradient.ok_or_else(|| {
            Error::param(
                "gradient",
                "this method needs gradients, but the driver computed none",
            )
        })
    }

    /// `Σ_k w_bk · A_bk` for channel weights `(batch, channels)`, or with
    /// [`eigen_smooth`](Self::eigen_smooth) the projection of `w · A`: the raw map
    /// `(batch, h, w)` of every channel-weight method.
    pub fn weighted_map(&self, weights: &Tensor) -> Result<Array3<f32>> {
        let weighted = self
            .activation
            .broadcast_mul(&weights.unsqueeze(2)?.unsqueeze(3)?)?;
        if self.eigen_smooth {
            project(&weighted, self.eigen_sign)
        } else {
            to_array3(&weighted.sum(1)?)
        }
    }

    /// The raw map of an element-wise method: `Σ_k E_bk`, or with
    /// [`eigen_smooth`](Self::eigen_smooth) the projection of `E`.
    pub fn elementwise_map(&self, e: &Tensor) -> Result<Array3<f32>> {
        if self.eigen_smooth {
            project(e, self.eigen_sign)
        } else {
            to_array3(&e.sum(1)?)
        }
    }

    pub(crate) fn report(&self, method: &'static str, done: usize, total: usize) {
        if let Some(p) = self.progress {
            p(Progress {
                method,
                layer: self.layer,
                done,
                total,
            });
        }
    }
}

/// A `(b, h, w)` f32 tensor as an array on the host.
pub(crate) fn to_array3(t: &Tensor) -> Result<Array3<f32>> {
    let (b, h, w) = t.dims3()?;
    let v = t
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Array3::from_shape_vec((b, h, w), v).map_err(|e| Error::param("map", e.to_string()))
}

/// A `(b, k, h, w)` f32 tensor as an array on the host.
pub(crate) fn to_array4(t: &Tensor) -> Result<Array4<f32>> {
    let (b, k, h, w) = t.dims4()?;
    let v = t
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Array4::from_shape_vec((b, k, h, w), v).map_err(|e| Error::param("activation", e.to_string()))
}

/// The per-image projection of a `(b, k, h, w)` tensor (see [`projection`]).
pub(crate) fn project(t: &Tensor, sign: EigenSign) -> Result<Array3<f32>> {
    let a = to_array4(t)?;
    let (b, _, h, w) = a.dim();
    let mut out = Array3::<f32>::zeros((b, h, w));
    for i in 0..b {
        let p = projection(a.index_axis(ndarray::Axis(0), i), sign);
        out.index_axis_mut(ndarray::Axis(0), i).assign(&p);
    }
    Ok(out)
}

/// A CAM method: turns one target layer's activation (and gradient) into a raw map.
///
/// The shared driver ([`crate::Cam`]) runs the model, makes the activation a `Var` when
/// gradients are needed, and does everything after the raw map (ReLU, scaling, resizing,
/// averaging over layers). A method only says what it needs and computes its raw map, so most
/// methods are a few lines. Implement it to add your own:
///
/// ```
/// use xai_cam::{CamMethod, LayerContext, Needs, Result};
///
/// /// Grad-CAM with the absolute value of the gradient's spatial mean as channel weights.
/// struct AbsGradCam;
///
/// impl CamMethod for AbsGradCam {
///     fn name(&self) -> &'static str { "absgradcam" }
///     fn needs(&self) -> Needs { Needs::Gradients }
///     fn raw_map(&self, cx: &LayerContext<'_>) -> Result<ndarray::Array3<f32>> {
///         let weights = cx.gradient()?.mean((2, 3))?.abs()?;
///         cx.weighted_map(&weights)
///     }
/// }
/// ```
pub trait CamMethod {
    /// The method's name, as the CLI spells it (`gradcam`, `gradcam++`, ...).
    fn name(&self) -> &'static str;

    /// Whether the driver must compute gradients.
    fn needs(&self) -> Needs;

    /// The raw map `(batch, h, w)` of one target layer, before the ReLU.
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>>;
}

impl<M: CamMethod + ?Sized> CamMethod for &M {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn needs(&self) -> Needs {
        (**self).needs()
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        (**self).raw_map(cx)
    }
}

impl<M: CamMethod + ?Sized> CamMethod for Box<M> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn needs(&self) -> Needs {
        (**self).needs()
    }
    fn raw_map(&self, cx: &LayerContext<'_>) -> Result<Array3<f32>> {
        (**self).raw_map(cx)
    }
}

/// The built-in methods by name, for command lines and configuration files.
///
/// ```
/// use xai_cam::Method;
/// let m: Method = "gradcam++".parse()?;
/// assert_eq!(m, Method::GradCamPlusPlus);
/// assert_eq!(m.name(), "gradcam++");
/// let err = "gradkam".parse::<Method>().unwrap_err().to_string();
/// assert!(err.contains("gradcam, gradcam++, xgradcam"));
/// # Ok::<(), xai_cam::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// [`crate::GradCam`]
    GradCam,
    /// [`crate::GradCamPlusPlus`]
    GradCamPlusPlus,
    /// [`crate::XGradCam`]
    XGradCam,
    /// [`crate::HiResCam`]
    HiResCam,
    /// [`crate::LayerCam`]
    LayerCam,
    /// [`crate::EigenCam`]
    EigenCam,
    /// [`crate::EigenGradCam`]
    EigenGradCam,
    /// [`crate::AblationCam`]
    AblationCam,
    /// [`crate::ScoreCam`]
    ScoreCam,
}

impl Method {
    /// Every built-in method, in the order of the reference's README.
    pub const ALL: [Method; 9] = [
        Method::GradCam,
        Method::GradCamPlusPlus,
        Method::XGradCam,
        Method::HiResCam,
        Method::LayerCam,
        Method::EigenCam,
        Method::EigenGradCam,
        Method::AblationCam,
        Method::ScoreCam,
    ];

    /// The name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcam++",
            Method::XGradCam => "xgradcam",
            Method::HiResCam => "hirescam",
            Method::LayerCam => "layercam",
            Method::EigenCam => "eigencam",
            Method::EigenGradCam => "eigengradcam",
            Method::AblationCam => "ablationcam",
            Method::ScoreCam => "scorecam",
        }
    }

    /// Every method name, in [`Method::ALL`]'s order.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|m| m.name()).collect()
    }

    /// The method with its default settings; `batch_size` sets AblationCAM's and ScoreCAM's
    /// model evaluations per forward pass (their defaults are the reference's 32 and 16).
    pub fn build(self, batch_size: Option<usize>) -> Result<Box<dyn CamMethod>> {
        use crate::methods::*;
        Ok(match self {
            Method::GradCam => Box::new(GradCam),
            Method::GradCamPlusPlus => Box::new(GradCamPlusPlus),
            Method::XGradCam => Box::new(XGradCam),
            Method::HiResCam => Box::new(HiResCam),
            Method::LayerCam => Box::new(LayerCam),
            Method::EigenCam => Box::new(EigenCam),
            Method::EigenGradCam => Box::new(EigenGradCam),
            Method::AblationCam => {
                let mut m = AblationCam::default();
                if let Some(b) = batch_size {
                    m = m.with_batch_size(b)?;
                }
                Box::new(m)
            }
            Method::ScoreCam => {
                let mut m = ScoreCam::default();
                if let Some(b) = batch_size {
                    m = m.with_batch_size(b)?;
                }
                Box::new(m)
            }
        })
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase();
        let alias = match key.as_str() {
            "gradcampp" | "gradcamplusplus" | "grad-cam++" => "gradcam++",
            "grad-cam" => "gradcam",
            other => other,
        };
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.name() == alias)
            .ok_or_else(|| Error::UnknownMethod {
                name: s.to_string(),
                known: Self::names().iter().map(|n| n.to_string()).collect(),
            })
    }
}
