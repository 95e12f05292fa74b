//! Named layers and their layouts.

use candle_core::Tensor;
use serde::Serialize;

use crate::{Error, Result};

/// How a layer's activation is laid out, so methods never guess it from the tensor's rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Layout {
    /// A feature map `(N, C, H, W)`; `channels` is `C`.
    Spatial,
    /// A token sequence `(N, prefix + grid.0 * grid.1, C)`, e.g. a ViT block: the first
    /// `prefix` tokens (class token, registers) are followed by a `grid.0 × grid.1` grid of
    /// patch tokens in row-major order.
    Tokens {
        /// Patch grid as (rows, columns).
        grid: (usize, usize),
        /// Number of tokens before the grid.
        prefix: usize,
    },
    /// A vector per image `(N, C)`, e.g. logits or pooled features.
    Vector,
}

/// A point in the network whose output can be reached by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerInfo {
    /// The name, matching the PyTorch state-dict prefix where there is one (`layer4`, `layer4.1`).
    pub name: String,
    /// Number of channels (feature dimension) of the layer's output.
    pub channels: usize,
    /// How the output is laid out.
    pub layout: Layout,
}

impl LayerInfo {
    /// A layer with a `(N, C, H, W)` output.
    pub fn spatial(name: impl Into<String>, channels: usize) -> Self {
        Self {
            name: name.into(),
            channels,
            layout: Layout::Spatial,
        }
    }

    /// A layer with an `(N, C)` output.
    pub fn vector(name: impl Into<String>, channels: usize) -> Self {
        Self {
            name: name.into(),
            channels,
            layout: Layout::Vector,
        }
    }
}

impl LayerInfo {
    /// Checks that `activation` has this layer's rank and channels (as `forward_from` needs),
    /// naming the layer and the expected shape otherwise.
    pub(crate) fn check_activation(&self, activation: &Tensor) -> Result<()> {
        let ok = match activation.dims() {
            [_, c, _, _] => self.layout == Layout::Spatial && *c == self.channels,
            [_, c] => self.layout == Layout::Vector && *c == self.channels,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        Err(Error::InputShape {
            what: format!("activation of `{}`", self.name),
            actual: activation.dims().to_vec(),
            expected: match self.layout {
                Layout::Vector => format!("(batch, {})", self.channels),
                _ => format!("(batch, {}, height, width)", self.channels),
            },
        })
    }
}

/// The index of the layer called `name`, or an error listing the valid names.
pub(crate) fn layer_position(layers: &[LayerInfo], name: &str) -> Result<usize> {
    layers
        .iter()
        .position(|l| l.name == name)
        .ok_or_else(|| Error::UnknownLayer {
            name: name.to_string(),
            valid: layers.iter().map(|l| l.name.clone()).collect(),
        })
}
