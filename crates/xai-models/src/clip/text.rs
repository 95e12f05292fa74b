//! CLIP's text tower, OpenAI/open_clip layout (names at the root of the state dict).

use candle_core::{DType, Device, Tensor};

use super::transformer::{Activation, LayerNorm, Transformer};
use crate::weights::Checkout;
use crate::{Error, Result};

/// CLIP's text tower: token and positional embeddings, the residual attention blocks with a
/// causal mask, `ln_final`, and `text_projection` applied at each text's end token.
///
/// Sizes come from the tensor shapes: vocabulary and width from `token_embedding.weight`,
/// context length from `positional_embedding`, depth by counting `transformer.resblocks`,
/// embedding width from `text_projection`.
#[derive(Debug, Clone)]
pub struct TextTransformer {
    token_embedding: Tensor,
    positional_embedding: Tensor,
    transformer: Transformer,
    ln_final: LayerNorm,
    text_projection: Tensor,
    vocab: usize,
    context: usize,
    embed_dim: usize,
}

impl TextTransformer {
    /// Reads the tower from `token_embedding.weight`, `positional_embedding`,
    /// `transformer.resblocks.*`, `ln_final.*` and `text_projection`; `heads` overrides the head
    /// count (default: width / 64, i.e. 8 for CLIP's 512-wide text tower).
    ///
    /// Missing or mis-shaped tensors are recorded in `ck`; call [`Checkout::finish`] to get
    /// the error naming them.
    pub fn from_checkout(
        ck: &mut Checkout<'_>,
        heads: Option<usize>,
        activation: Activation,
        device: &Device,
    ) -> Result<Self> {
        let pos_shape = ck.shape_of("positional_embedding");
        let (vocab, width) = match ck.shape_of("token_embedding.weight").as_deref() {
            Some(&[v, w]) => (v, w),
            _ => (
                49408,
                match pos_shape.as_deref() {
                    Some(&[_, w]) => w,
                    _ => 512,
                },
            ),
        };
        let context = match pos_shape.as_deref() {
            Some(&[c, _]) => c,
            _ => super::CONTEXT_LENGTH,
        };
        let embed_dim = match ck.shape_of("text_projection").as_deref() {
            Some(&[_, e]) => e,
            _ => 512,
        };
        let token_embedding = ck.take("token_embedding.weight", &[vocab, width])?;
        let positional_embedding = ck.take("positional_embedding", &[context, width])?;
        let transformer =
            Transformer::from_checkout(ck, "transformer.", width, heads, activation, device)?;
        let ln_final = LayerNorm::take(ck, "ln_final", width, device)?;
        let text_projection = ck.take("text_projection", &[width, embed_dim])?;
        Ok(Self {
            token_embedding: token_embedding.to_device(device)?,
            positional_embedding: positional_embedding.to_device(device)?,
            transformer,
            ln_final,
            text_projection: text_projection.to_device(device)?,
            vocab,
            context,
            embed_dim,
        })
    }

    /// `(N, context)` token ids (u32 or i64, e.g. from
    /// [`ClipTokenizer::tokenize_tensor`](super::ClipTokenizer::tokenize_tensor)) → `(N, E)`
    /// text embeddings (not normalised), each taken at the row's largest id (the first end
    /// token, as CLIP does).
    ///
    /// The mask is causal, so tokens after the last end token of the batch cannot change the
    /// result; they are not computed.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let shape_err = || Error::InputShape {
            what: "CLIP token ids".into(),
            actual: ids.dims().to_vec(),
            expected: format!(
                "(N, {}) integer ids (the context length of this checkpoint)",
                self.context
            ),
        };
        let (n, c) = ids.dims2().map_err(|_| shape_err())?;
        if c != self.context || n == 0 {
            return Err(shape_err());
        }
        if ids.dtype().is_float() {
            return Err(Error::InvalidInput {
                what: "CLIP token ids".into(),
                reason: format!("ids must be integers (u32 or i64), not {:?}", ids.dtype()),
            });
        }
        let rows = ids.to_dtype(DType::I64)?.to_vec2::<i64>()?;
        let mut pooled = Vec::with_capacity(n);
        for (r, row) in rows.iter().enumerate() {
            if let Some(&bad) = row
                .iter()
                .find(|&&v| v < 0 || v as u64 >= self.vocab as u64)
            {
                return Err(Error::InvalidInput {
                    what: "CLIP token ids".into(),
                    reason: format!(
                        "row {r} holds id {bad}, outside the vocabulary 0..{} of this checkpoint",
                        self.vocab
                    ),
                });
            }
            // The first largest id, as torch's argmax.
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            pooled.push(best);
        }
        let used = pooled.iter().max().map_or(1, |&m| m + 1);
        let device = self.token_embedding.device();
        let flat: Vec<u32> = rows
            .iter()
            .flat_map(|row| row[..used].iter().map(|&v| v as u32))
            .collect();
        let flat = Tensor::from_vec(flat, n * used, device)?;
        let width = self.transformer.width();
        let x = self
            .token_embedding
            .index_select(&flat, 0)?
            .reshape((n, used, width))?
            .broadcast_add(&self.positional_embedding.narrow(0, 0, used)?)?;
        let x = self.transformer.forward(&x, true)?;
        let at: Vec<u32> = pooled
            .iter()
            .enumerate()
            .map(|(i, &p)| (i * used + p) as u32)
            .collect();
        let at = Tensor::from_vec(at, n, device)?;
        let x = x.reshape((n * used, width))?.index_select(&at, 0)?;
        Ok(self.ln_final.forward(&x)?.matmul(&self.text_projection)?)
    }

    /// The context length (77 for CLIP).
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The vocabulary size (49408 for CLIP).
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// The token width (512 for CLIP's text tower).
    pub fn width(&self) -> usize {
        self.transformer.width()
    }

    /// The number of residual attention blocks.
    pub fn layers(&self) -> usize {
        self.transformer.layers()
    }

    /// The number of attention heads.
    pub fn heads(&self) -> usize {
        self.transformer.heads()
    }

    /// The device the weights are on.
    pub fn device(&self) -> &Device {
        self.token_embedding.device()
    }

    /// The width of the text embedding.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }
}
