//! Named layers and their layouts.

use serde::Serialize;

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
