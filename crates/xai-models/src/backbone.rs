//! The one trait every explanation method plugs into.

use candle_core::{Device, Tensor};

use crate::{Error, InputSpec, Labels, LayerInfo, Layout, Result};

/// A vision model whose intermediate layers can be reached by name.
///
/// Methods never hook into a model: they run it *up to* a named layer with
/// [`forward_to`](Backbone::forward_to), edit or differentiate the activation (wrap it in a
/// [`candle_core::Var`]), and run the *rest* with [`forward_from`](Backbone::forward_from).
/// Nothing before the target layer is run twice, and the model is never mutated.
///
/// Implementing it for your own candle model takes a few lines:
///
/// ```
/// use candle_core::{DType, Device, Module, Tensor};
/// use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};
/// use xai_models::{Backbone, InputSpec, Labels, LayerInfo, Result};
///
/// struct TinyNet { conv: Conv2d, fc: Linear, layers: Vec<LayerInfo>, spec: InputSpec, labels: Labels }
///
/// impl TinyNet {
///     fn new(vb: VarBuilder) -> Result<Self> {
///         let conv = candle_nn::conv2d(3, 8, 3, Conv2dConfig { padding: 1, ..Default::default() }, vb.pp("conv"))?;
///         let fc = candle_nn::linear(8, 4, vb.pp("fc"))?;
///         let layers = vec![LayerInfo::spatial("conv", 8), LayerInfo::vector("fc", 4)];
///         Ok(Self { conv, fc, layers, spec: InputSpec::imagenet(), labels: Labels::numbered(4) })
///     }
/// }
///
/// impl Backbone for TinyNet {
///     fn layers(&self) -> &[LayerInfo] { &self.layers }
///     fn input_spec(&self) -> &InputSpec { &self.spec }
///     fn labels(&self) -> &Labels { &self.labels }
///     fn device(&self) -> &Device { &Device::Cpu }
///     fn forward_to(&self, x: &Tensor, layer: &str) -> Result<Tensor> {
///         let features = self.conv.forward(x)?.relu()?;
///         match self.layer_index(layer)? {
///             0 => Ok(features),
///             _ => self.forward_from(&features, "conv"),
///         }
///     }
///     fn forward_from(&self, activation: &Tensor, layer: &str) -> Result<Tensor> {
///         match self.layer_index(layer)? {
///             0 => Ok(self.fc.forward(&activation.mean((2, 3))?)?),
///             _ => Ok(activation.clone()),
///         }
///     }
/// }
///
/// let net = TinyNet::new(VarBuilder::zeros(DType::F32, &Device::Cpu))?;
/// let x = Tensor::zeros((2, 3, 16, 16), DType::F32, &Device::Cpu)?;
/// let features = net.forward_to(&x, "conv")?;
/// assert_eq!(features.dims(), &[2, 8, 16, 16]);
/// assert_eq!(net.forward_from(&features, "conv")?.dims(), &[2, 4]);
/// assert_eq!(net.forward(&x)?.dims(), &[2, 4]);
/// assert!(net.forward_to(&x, "conv9").is_err()); // the error lists the valid names
/// # Ok::<(), xai_models::Error>(())
/// ```
pub trait Backbone {
    /// Every named layer, in execution order; the last one is the model output.
    fn layers(&self) -> &[LayerInfo];

    /// What input the model expects (size, normalisation).
    fn input_spec(&self) -> &InputSpec;

    /// The names of the model's output classes.
    fn labels(&self) -> &Labels;

    /// The device the model's weights live on; inputs must be moved there.
    fn device(&self) -> &Device;

    /// Runs the model on a preprocessed batch `(N, 3, H, W)` and returns the output of `layer`.
    fn forward_to(&self, input: &Tensor, layer: &str) -> Result<Tensor>;

    /// Runs the part of the model after `layer` on an activation of that layer (as returned by
    /// [`forward_to`](Backbone::forward_to), possibly edited) and returns the model output.
    fn forward_from(&self, activation: &Tensor, layer: &str) -> Result<Tensor>;

    /// Runs the whole model: a preprocessed batch in, the output (e.g. logits `(N, K)`) out.
    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let last = self.layers().last().ok_or_else(|| Error::Parameter {
            name: "layers",
            reason: "the backbone reports no layers".into(),
        })?;
        let name = last.name.clone();
        self.forward_to(input, &name)
    }

    /// Runs the model once and returns the outputs of several layers, in the order asked.
    ///
    /// The default runs [`forward_to`](Backbone::forward_to) once per layer; backbones
    /// override it to share one pass.
    fn forward_to_many(&self, input: &Tensor, layers: &[&str]) -> Result<Vec<Tensor>> {
        layers.iter().map(|l| self.forward_to(input, l)).collect()
    }

    /// The position of `name` in [`layers`](Backbone::layers), or an error listing the valid names.
    fn layer_index(&self, name: &str) -> Result<usize> {
        crate::layer::layer_position(self.layers(), name)
    }

    /// The description of the layer `name`, or an error listing the valid names.
    fn layer(&self, name: &str) -> Result<&LayerInfo> {
        let index = self.layer_index(name)?;
        Ok(&self.layers()[index])
    }

    /// The layer CAM methods use by default: the last spatial (or token-grid) layer.
    fn default_cam_layer(&self) -> Option<&LayerInfo> {
        self.layers()
            .iter()
            .rev()
            .find(|l| matches!(l.layout, Layout::Spatial | Layout::Tokens { .. }))
    }
}

impl<B: Backbone + ?Sized> Backbone for &B {
    fn layers(&self) -> &[LayerInfo] {
        (**self).layers()
    }
    fn input_spec(&self) -> &InputSpec {
        (**self).input_spec()
    }
    fn labels(&self) -> &Labels {
        (**self).labels()
    }
    fn device(&self) -> &Device {
        (**self).device()
    }
    fn forward_to(&self, input: &Tensor, layer: &str) -> Result<Tensor> {
        (**self).forward_to(input, layer)
    }
    fn forward_from(&self, activation: &Tensor, layer: &str) -> Result<Tensor> {
        (**self).forward_from(activation, layer)
    }
    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        (**self).forward(input)
    }
    fn forward_to_many(&self, input: &Tensor, layers: &[&str]) -> Result<Vec<Tensor>> {
        (**self).forward_to_many(input, layers)
    }
}

impl<B: Backbone + ?Sized> Backbone for Box<B> {
    fn layers(&self) -> &[LayerInfo] {
        (**self).layers()
    }
    fn input_spec(&self) -> &InputSpec {
        (**self).input_spec()
    }
    fn labels(&self) -> &Labels {
        (**self).labels()
    }
    fn device(&self) -> &Device {
        (**self).device()
    }
    fn forward_to(&self, input: &Tensor, layer: &str) -> Result<Tensor> {
        (**self).forward_to(input, layer)
    }
    fn forward_from(&self, activation: &Tensor, layer: &str) -> Result<Tensor> {
        (**self).forward_from(activation, layer)
    }
    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        (**self).forward(input)
    }
    fn forward_to_many(&self, input: &Tensor, layers: &[&str]) -> Result<Vec<Tensor>> {
        (**self).forward_to_many(input, layers)
    }
}
