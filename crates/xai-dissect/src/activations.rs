//! Pooled activations of named layers over a probe set: `A` (N images × U units) per layer.

use std::path::PathBuf;

use candle_core::{Tensor, D};
use ndarray::Array2;
use xai_models::{preprocess, Backbone, Layout};

use crate::{Error, Result};

/// How a spatial map becomes one number per unit (CLIP-Dissect's `pool_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// Mean over H, W (the default).
    #[default]
    Avg,
    /// Max over H, W.
    Max,
}

impl Pooling {
    /// `avg` or `max`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Max => "max",
        }
    }
}

/// One layer's output pooled per unit, as the reference's forward hooks do: a spatial map
/// `(N, C, H, W)` is averaged (or maxed) over `H, W`; tokens `(N, T, C)` give token 0 (the
/// class token); a vector `(N, C)` is kept as is.
pub fn pool(x: &Tensor, layout: Layout, pooling: Pooling) -> Result<Array2<f32>> {
    let pooled = match layout {
        Layout::Spatial => {
            let flat = x.flatten_from(2)?;
            match pooling {
                Pooling::Avg => flat.mean(D::Minus1)?,
                Pooling::Max => flat.max(D::Minus1)?,
            }
        }
        Layout::Tokens { .. } => x.narrow(1, 0, 1)?.squeeze(1)?,
        _ => x.clone(),
    };
    let (n, u) = pooled.dims2()?;
    let data = pooled
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Array2::from_shape_vec((n, u), data).map_err(|e| Error::Parameter {
        name: "activations",
        reason: e.to_string(),
    })
}

/// Decodes and preprocesses `images` for `model` and returns the pooled activations of each
/// of `layers` (in that order), running the model in batches of `batch_size`.
/// `progress(done)` is called after each batch with the number of images done.
pub fn activations(
    model: &dyn Backbone,
    layers: &[String],
    images: &[PathBuf],
    pooling: Pooling,
    batch_size: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Array2<f32>>> {
    let infos = layers
        .iter()
        .map(|l| model.layer(l).cloned())
        .collect::<xai_models::Result<Vec<_>>>()?;
    let names: Vec<&str> = layers.iter().map(String::as_str).collect();
    let spec = model.input_spec().clone();
    let mut parts: Vec<Vec<Array2<f32>>> = vec![Vec::new(); layers.len()];
    let mut done = 0;
    for batch in images.chunks(batch_size.max(1)) {
        let x = input_batch(batch, &spec, model.device())?;
        let outs = model.forward_to_many(&x, &names)?;
        for ((part, out), info) in parts.iter_mut().zip(&outs).zip(&infos) {
            part.push(pool(out, info.layout, pooling)?);
        }
        done += batch.len();
        progress(done);
    }
    parts
        .into_iter()
        .zip(&infos)
        .map(|(p, info)| {
            let views: Vec<_> = p.iter().map(|a| a.view()).collect();
            if views.is_empty() {
                return Ok(Array2::zeros((0, info.channels)));
            }
            ndarray::concatenate(ndarray::Axis(0), &views).map_err(|e| Error::Parameter {
                name: "activations",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The model inputs of `images`, decoded and preprocessed by `spec`, stacked `(N, 3, H, W)`.
pub(crate) fn input_batch(
    images: &[PathBuf],
    spec: &xai_models::InputSpec,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let inputs = images
        .iter()
        .map(|p| preprocess::load_input(p, spec, device))
        .collect::<xai_models::Result<Vec<_>>>()?;
    Ok(Tensor::stack(&inputs, 0)?)
}
