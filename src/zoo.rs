//! Backbones by name: an architecture, a weights file (or the embedded default), a device.

use std::path::Path;

use xai_models::candle_core::Device;
use xai_models::{Backbone, Error, InputSpec, ResNet, ResNetConfig, Result, WeightsFile};
use xai_testworld::Task;

/// The built-in model used when no `--arch`/`--weights` is given: the test world's `objects`
/// classifier (goldfish, ball, star, …), trained in this repository.
pub const EMBEDDED_ARCH: &str = "testworld-objects";

/// The test world's `scenes` classifier (water, grass, sand, …), also built in.
pub const EMBEDDED_SCENES_ARCH: &str = "testworld-scenes";

/// Every architecture name [`load`] accepts.
pub fn known_archs() -> Vec<&'static str> {
    let mut archs = vec![EMBEDDED_ARCH, EMBEDDED_SCENES_ARCH];
    archs.extend(xai_models::RESNET_ARCHS);
    archs
}

/// Loads a backbone.
///
/// - no `arch`, no `weights`: the embedded default model;
/// - `weights` without `arch`: the architecture is detected from the tensor names;
/// - `arch` without `weights`: the weights are looked up (`$XAI_WEIGHTS_<ARCH>`,
///   `$XAI_WEIGHTS_DIR`, the hf cache, the hub with the `hub` feature).
pub fn load(
    arch: Option<&str>,
    weights: Option<&Path>,
    device: &Device,
) -> Result<Box<dyn Backbone>> {
    match (arch, weights) {
        (None, None) | (Some(EMBEDDED_ARCH), None) => Ok(Box::new(builtin(Task::Objects, device)?)),
        (Some(EMBEDDED_SCENES_ARCH), None) => Ok(Box::new(builtin(Task::Scenes, device)?)),
        (Some(a @ (EMBEDDED_ARCH | EMBEDDED_SCENES_ARCH)), Some(_)) => Err(Error::Parameter {
            name: "arch",
            reason: format!("`{a}` is built in and takes no --weights; name the architecture of the file instead (one of {})", xai_models::RESNET_ARCHS.join(", ")),
        }),
        (arch, weights) => {
            let path = match (arch, weights) {
                (_, Some(w)) => xai_models::source::resolve_weights(arch.unwrap_or("resnet"), Some(w))?,
                (Some(a), None) => {
                    ResNetConfig::from_arch(a).map_err(|_| unknown_arch(a))?;
                    xai_models::source::resolve_weights(a, None)?
                }
                (None, None) => unreachable!("handled above"),
            };
            let file = WeightsFile::open(&path, device)?;
            let config = match arch {
                Some(a) => ResNetConfig::from_arch(a).map_err(|_| unknown_arch(a))?,
                None => ResNetConfig::detect(&file).ok_or_else(|| Error::WeightsFormat {
                    path: path.clone(),
                    reason: format!(
                        "cannot tell the architecture from its tensor names; pass --arch (one of {})",
                        xai_models::RESNET_ARCHS.join(", ")
                    ),
                })?,
            };
            Ok(Box::new(ResNet::from_weights(&file, config, device)?))
        }
    }
}

fn unknown_arch(name: &str) -> Error {
    Error::UnknownArch {
        name: name.to_string(),
        known: known_archs().iter().map(|s| s.to_string()).collect(),
    }
}

/// A built-in test world model (see [`EMBEDDED_ARCH`], [`EMBEDDED_SCENES_ARCH`]).
pub fn builtin(task: Task, device: &Device) -> Result<ResNet> {
    xai_testworld::pretrained::model_on(task, device).map_err(|e| match e {
        xai_testworld::TestWorldError::Model(e) => e,
        other => Error::Parameter {
            name: "arch",
            reason: other.to_string(),
        },
    })
}

/// A backbone with its class names replaced (e.g. Places365's categories file).
pub struct Relabelled<B> {
    inner: B,
    labels: xai_models::Labels,
}

impl<B: Backbone> Relabelled<B> {
    /// Wraps `inner`; the number of labels must match the number of outputs.
    pub fn new(inner: B, labels: xai_models::Labels) -> Result<Self> {
        let outputs = inner.layers().last().map(|l| l.channels).unwrap_or(0);
        if labels.len() != outputs {
            return Err(Error::Parameter {
                name: "labels",
                reason: format!(
                    "{} labels given for a model with {outputs} outputs",
                    labels.len()
                ),
            });
        }
        Ok(Self { inner, labels })
    }
}

impl<B: Backbone> Backbone for Relabelled<B> {
    fn layers(&self) -> &[xai_models::LayerInfo] {
        self.inner.layers()
    }
    fn input_spec(&self) -> &InputSpec {
        self.inner.input_spec()
    }
    fn labels(&self) -> &xai_models::Labels {
        &self.labels
    }
    fn device(&self) -> &Device {
        self.inner.device()
    }
    fn forward_to(
        &self,
        input: &xai_models::candle_core::Tensor,
        layer: &str,
    ) -> Result<xai_models::candle_core::Tensor> {
        self.inner.forward_to(input, layer)
    }
    fn forward_from(
        &self,
        activation: &xai_models::candle_core::Tensor,
        layer: &str,
    ) -> Result<xai_models::candle_core::Tensor> {
        self.inner.forward_from(activation, layer)
    }
    fn forward_to_many(
        &self,
        input: &xai_models::candle_core::Tensor,
        layers: &[&str],
    ) -> Result<Vec<xai_models::candle_core::Tensor>> {
        self.inner.forward_to_many(input, layers)
    }
}
