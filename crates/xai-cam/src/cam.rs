//! The shared driver: runs the model once per target layer, hands each method what it
//! needs, and keeps the raw maps.

use candle_core::{Tensor, Var};
use ndarray::{Array3, Axis};
use xai_models::{Backbone, Layout};

use crate::eigen::EigenSign;
use crate::method::{CamMethod, LayerContext, Needs, Progress};
use crate::targets::{ImageTargets, Targets};
use crate::{map, Error, Result};

/// A progress callback.
type ProgressFn<'a> = Box<dyn Fn(Progress<'_>) + 'a>;

/// The raw map of one target layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMap {
    /// The layer's name.
    pub layer: String,
    /// The raw map `(batch, h, w)` at the layer's resolution, **before** the ReLU (so an
    /// all-negative map, which the reference silently turns into zeros, can be seen).
    pub raw: Array3<f32>,
}

/// What [`Cam::compute`] returns: raw maps per layer, and what they explain.
///
/// Normalisation is a separate, named step: [`CamResult::normalise`].
#[derive(Debug, Clone, PartialEq)]
pub struct CamResult {
    /// The method's name.
    pub method: &'static str,
    /// One raw map per target layer, in the order the layers were given.
    pub layers: Vec<LayerMap>,
    /// The class each image's map explains, when the targets are class logits
    /// ([`Targets::TopClass`] or [`Targets::Class`]).
    pub classes: Option<Vec<usize>>,
    /// The input's `(height, width)`.
    pub input_size: (usize, usize),
}

impl CamResult {
    /// The reference's post-processing: per layer ReLU, min-max scaling, resize to the input
    /// size; mean over layers; min-max scaling again. Returns `(batch, H, W)` in `[0, 1)`;
    /// an all-zero map stays all-zero. See [`map::normalise`].
    pub fn normalise(&self) -> Array3<f32> {
        let views: Vec<_> = self.layers.iter().map(|l| l.raw.view()).collect();
        map::normalise(&views, self.input_size.0, self.input_size.1)
    }
}

/// The CAM driver: one model, one method, the target layers and the options.
///
/// For a gradient method it runs the model up to each target layer (`forward_to`), makes that
/// activation a [`Var`], runs the rest (`forward_from`) and back-propagates the sum of the
/// targets' scores: no hooks, and the model is only borrowed. Other methods get the activation
/// and the model, and evaluate the part they need.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use xai_cam::{Cam, GradCamPlusPlus, Targets};
///
/// let dev = Device::Cpu;
/// let model = xai_models::testing::random_resnet(
///     xai_models::ResNetConfig::resnet18().with_width(4).with_classes(10), 0, &dev)?;
/// let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &dev)?;
/// let cam = Cam::new(&model, GradCamPlusPlus)?
///     .with_layers(&["layer3", "layer4"])?   // several layers: the maps are averaged
///     .compute(&x, &Targets::TopClass)?;
/// assert_eq!(cam.layers[1].raw.dim(), (2, 2, 2));   // layer4 at 64×64 input
/// let map = cam.normalise();
/// assert_eq!(map.dim(), (2, 64, 64));
/// assert!(map.iter().all(|&v| (0.0..=1.0).contains(&v)));
///
/// // Unknown layers are refused with the list of valid names.
/// let err = Cam::new(&model, GradCamPlusPlus)?.with_layers(&["layer9"]).unwrap_err();
/// assert!(err.to_string().contains("layer4.1"));
/// # Ok::<(), xai_cam::Error>(())
/// ```
pub struct Cam<'a> {
    model: &'a dyn Backbone,
    method: Box<dyn CamMethod + 'a>,
    layers: Vec<String>,
    eigen_smooth: bool,
    eigen_sign: EigenSign,
    progress: Option<ProgressFn<'a>>,
}

impl std::fmt::Debug for Cam<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cam")
            .field("method", &self.method.name())
            .field("layers", &self.layers)
            .field("eigen_smooth", &self.eigen_smooth)
            .field("eigen_sign", &self.eigen_sign)
            .finish()
    }
}

impl<'a> Cam<'a> {
    /// A driver for `method` on `model`, targeting the model's default CAM layer (its last
    /// spatial layer: `layer4` for ResNets).
    pub fn new<B: Backbone + 'a, M: CamMethod + 'a>(model: &'a B, method: M) -> Result<Self> {
        let model: &'a dyn Backbone = model;
        let layer = model
            .default_cam_layer()
            .ok_or_else(|| Error::NotSpatial {
                name: "<default>".into(),
                spatial: Vec::new(),
            })?
            .name
            .clone();
        Ok(Self {
            model,
            method: Box::new(method),
            layers: vec![layer],
            eigen_smooth: false,
            eigen_sign: EigenSign::default(),
            progress: None,
        })
    }

    /// Sets the target layers (at least one). Their maps are averaged after scaling, as the
    /// reference does. Unknown or non-spatial layers are refused with the valid names.
    pub fn with_layers<S: AsRef<str>>(mut self, layers: &[S]) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::param("layers", "give at least one target layer"));
        }
        let infos = self.model.layers();
        let spatial: Vec<String> = infos
            .iter()
            .filter(|l| l.layout == Layout::Spatial)
            .map(|l| l.name.clone())
            .collect();
        let mut out = Vec::with_capacity(layers.len());
        for name in layers {
            let name = name.as_ref();
            let info =
                infos
                    .iter()
                    .find(|l| l.name == name)
                    .ok_or_else(|| Error::UnknownLayer {
                        name: name.to_string(),
                        valid: infos.iter().map(|l| l.name.clone()).collect(),
                    })?;
            if info.layout != Layout::Spatial {
                return Err(Error::NotSpatial {
                    name: name.to_string(),
                    spatial: spatial.clone(),
                });
            }
            out.push(name.to_string());
        }
        self.layers = out;
        Ok(self)
    }

    /// The reference's `eigen_smooth`: replace each channel-weighted sum by its first principal
    /// component projection (default off).
    pub fn with_eigen_smooth(mut self, on: bool) -> Self {
        self.eigen_smooth = on;
        self
    }

    /// The sign convention of every projection (EigenCAM, EigenGradCAM, `eigen_smooth`).
    pub fn with_eigen_sign(mut self, sign: EigenSign) -> Self {
        self.eigen_sign = sign;
        self
    }

    /// Calls `f` as AblationCAM and ScoreCAM make progress (nothing is printed otherwise).
    pub fn on_progress(mut self, f: impl Fn(Progress<'_>) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// The target layers.
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    /// The method's name.
    pub fn method_name(&self) -> &'static str {
        self.method.name()
    }

    /// Computes the raw maps of a preprocessed batch `(batch, 3, H, W)`.
    pub fn compute(&self, input: &Tensor, targets: &Targets<'_>) -> Result<CamResult> {
        let (batch, _, height, width) = input.dims4().map_err(|_| Error::Shape {
            what: "CAM input".into(),
            actual: input.dims().to_vec(),
            expected: "(batch, 3, height, width)".into(),
        })?;
        if batch == 0 {
            return Err(Error::param("input", "the batch is empty"));
        }
        // Methods index into the input and the activations: make both contiguous once.
        let input = input.contiguous()?.detach();
        let mut maps = Vec::with_capacity(self.layers.len());
        let mut classes = None;
        match self.method.needs() {
            Needs::Gradients => {
                let mut resolved: Option<ImageTargets<'_>> = None;
                for layer in &self.layers {
                    let a = self.model.forward_to(&input, layer)?.contiguous()?.detach();
                    check_activation(&a, layer)?;
                    let var = Var::from_tensor(&a)?;
                    let out = self.model.forward_from(var.as_tensor(), layer)?;
                    let output = out.detach();
                    if resolved.is_none() {
                        resolved = Some(ImageTargets::resolve(targets, &output)?);
                    }
                    let t = resolved
                        .as_ref()
                        .ok_or_else(|| Error::param("targets", "not resolved"))?;
                    let loss = t.score_batch(&out)?.sum_all()?;
                    let grads = loss.backward()?;
                    let g = match grads.get(var.as_tensor()) {
                        Some(g) => g.detach(),
                        // The score does not depend on this layer: a zero gradient.
                        None => a.zeros_like()?,
                    };
                    let a = var.as_tensor().detach();
                    let raw = self.layer_map(&input, &output, layer, &a, Some(&g), t)?;
                    maps.push(LayerMap {
                        layer: layer.clone(),
                        raw,
                    });
                    classes = t.classes().map(<[usize]>::to_vec);
                }
            }
            Needs::Activations => {
                let names: Vec<&str> = self.layers.iter().map(String::as_str).collect();
                let acts = self.model.forward_to_many(&input, &names)?;
                let first = acts
                    .first()
                    .ok_or_else(|| Error::param("layers", "no target layer"))?;
                check_activation(first, &self.layers[0])?;
                let output = self.model.forward_from(first, &self.layers[0])?.detach();
                let t = ImageTargets::resolve(targets, &output)?;
                for (layer, a) in self.layers.iter().zip(&acts) {
                    check_activation(a, layer)?;
                    let a = a.contiguous()?.detach();
                    let raw = self.layer_map(&input, &output, layer, &a, None, &t)?;
                    maps.push(LayerMap {
                        layer: layer.clone(),
                        raw,
                    });
                }
                classes = t.classes().map(<[usize]>::to_vec);
            }
        }
        Ok(CamResult {
            method: self.method.name(),
            layers: maps,
            classes,
            input_size: (height, width),
        })
    }

    /// The reference's `aug_smooth`: the normalised maps of six augmentations of the input
    /// (horizontal flip or not × intensity factor 0.9, 1, 1.1), each flipped back, averaged
    /// **without** re-normalisation. With [`Targets::TopClass`] each augmentation takes its
    /// own top class, as the reference does. Returns `(batch, H, W)`.
    pub fn compute_aug_smooth(&self, input: &Tensor, targets: &Targets<'_>) -> Result<Array3<f32>> {
        let (_, _, _, width) = input.dims4().map_err(|_| Error::Shape {
            what: "CAM input".into(),
            actual: input.dims().to_vec(),
            expected: "(batch, 3, height, width)".into(),
        })?;
        let input = &input.contiguous()?;
        let rev = Tensor::from_iter((0..width as u32).rev(), input.device())?;
        let flipped = input.index_select(&rev, 3)?;
        let mut sum: Option<Array3<f32>> = None;
        for flip in [false, true] {
            for factor in [0.9f64, 1.0, 1.1] {
                let x = if flip { &flipped } else { input };
                let x = if factor == 1.0 {
                    x.clone()
                } else {
                    x.affine(factor, 0.0)?
                };
                let mut m = self.compute(&x, targets)?.normalise();
                if flip {
                    m.invert_axis(Axis(2));
                }
                sum = Some(match sum {
                    None => m,
                    Some(s) => s + m,
                });
            }
        }
        let sum = sum.ok_or_else(|| Error::param("aug_smooth", "no augmentation ran"))?;
        Ok(sum / 6.0)
    }

    fn layer_map(
        &self,
        input: &Tensor,
        output: &Tensor,
        layer: &str,
        activation: &Tensor,
        gradient: Option<&Tensor>,
        targets: &ImageTargets<'_>,
    ) -> Result<Array3<f32>> {
        let progress = self.progress.as_deref();
        let cx = LayerContext {
            model: self.model,
            input,
            output,
            layer,
            activation,
            gradient,
            targets,
            eigen_smooth: self.eigen_smooth,
            eigen_sign: self.eigen_sign,
            progress: progress.map(|p| p as &dyn Fn(Progress<'_>)),
        };
        let raw = self.method.raw_map(&cx)?;
        let (b, _, h, w) = activation.dims4()?;
        if raw.dim() != (b, h, w) {
            return Err(Error::Shape {
                what: format!("raw map of {} at `{layer}`", self.method.name()),
                actual: raw.shape().to_vec(),
                expected: format!("({b}, {h}, {w})"),
            });
        }
        Ok(raw)
    }
}

fn check_activation(a: &Tensor, layer: &str) -> Result<()> {
    if a.rank() != 4 {
        return Err(Error::Shape {
            what: format!("activation of `{layer}`"),
            actual: a.dims().to_vec(),
            expected: "(batch, channels, height, width)".into(),
        });
    }
    Ok(())
}
