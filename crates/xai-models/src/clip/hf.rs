//! The Hugging Face `CLIPModel` layout (`vision_model.*`, `text_model.*`), converted to
//! OpenAI's names so that one set of towers reads both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use super::transformer::Activation;
use crate::{Error, Result, WeightsFile};

/// Whether the tensors are laid out as a Hugging Face `CLIPModel` (`vision_model.*`).
pub fn is_hf_layout(weights: &WeightsFile) -> bool {
    weights
        .names()
        .iter()
        .any(|n| n.starts_with("vision_model."))
}

/// The OpenAI name of a Hugging Face tensor whose values are kept as they are.
fn rename(name: &str) -> Option<String> {
    const FIXED: [(&str, &str); 11] = [
        (
            "vision_model.embeddings.patch_embedding.weight",
            "visual.conv1.weight",
        ),
        (
            "vision_model.embeddings.class_embedding",
            "visual.class_embedding",
        ),
        (
            "vision_model.embeddings.position_embedding.weight",
            "visual.positional_embedding",
        ),
        ("vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"),
        ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
        (
            "vision_model.post_layernorm.weight",
            "visual.ln_post.weight",
        ),
        ("vision_model.post_layernorm.bias", "visual.ln_post.bias"),
        (
            "text_model.embeddings.token_embedding.weight",
            "token_embedding.weight",
        ),
        (
            "text_model.embeddings.position_embedding.weight",
            "positional_embedding",
        ),
        ("text_model.final_layer_norm.weight", "ln_final.weight"),
        ("text_model.final_layer_norm.bias", "ln_final.bias"),
    ];
    if let Some((_, to)) = FIXED.iter().find(|(from, _)| *from == name) {
        return Some((*to).to_string());
    }
    let (block, field) = split_block(name)?;
    const FIELDS: [(&str, &str); 4] = [
        ("layer_norm1.", "ln_1."),
        ("layer_norm2.", "ln_2."),
        ("mlp.fc1.", "mlp.c_fc."),
        ("mlp.fc2.", "mlp.c_proj."),
    ];
    let mapped = if let Some(p) = field.strip_prefix("self_attn.out_proj.") {
        format!("attn.out_proj.{p}")
    } else {
        let (from, to) = FIELDS.iter().find(|(from, _)| field.starts_with(from))?;
        format!("{to}{}", &field[from.len()..])
    };
    Some(format!("{block}.{mapped}"))
}

/// `vision_model.encoder.layers.3.mlp.fc1.weight` → (`visual.transformer.resblocks.3`,
/// `mlp.fc1.weight`).
fn split_block(name: &str) -> Option<(String, &str)> {
    let (tower, rest) = if let Some(rest) = name.strip_prefix("vision_model.encoder.layers.") {
        ("visual.transformer.resblocks.", rest)
    } else if let Some(rest) = name.strip_prefix("text_model.encoder.layers.") {
        ("transformer.resblocks.", rest)
    } else {
        return None;
    };
    let (index, field) = rest.split_once('.')?;
    Some((format!("{tower}{index}"), field))
}

/// Converts a Hugging Face `CLIPModel` state dict to OpenAI's names: q, k and v projections
/// concatenated (in that order) into `attn.in_proj_{weight,bias}`, `visual_projection` and
/// `text_projection` transposed into `visual.proj` and `text_projection`, the other tensors
/// renamed (`patch_embedding` → `conv1`, `pre_layrnorm` → `ln_pre`, `layer_norm1` → `ln_1`,
/// `fc1` → `c_fc`, `final_layer_norm` → `ln_final`, …). `position_ids` buffers are dropped;
/// tensors it does not know keep their names, so that loading reports them as unexpected.
pub fn hf_to_openai(weights: &WeightsFile) -> Result<WeightsFile> {
    let mut out: HashMap<String, Tensor> = HashMap::new();
    let get = |n: &str| weights.get(n).cloned();
    for name in weights.names() {
        let Some(t) = get(name) else { continue };
        if name.ends_with("position_ids") {
            continue;
        }
        if name == "visual_projection.weight" {
            out.insert("visual.proj".into(), t.t()?.contiguous()?);
            continue;
        }
        if name == "text_projection.weight" {
            out.insert("text_projection".into(), t.t()?.contiguous()?);
            continue;
        }
        // q, k, v: concatenated once, at the q projection; left as they are (and so reported
        // as unexpected) when one of the three is missing.
        if let Some((block, field)) = split_block(name) {
            if let Some((which, kind)) = field
                .strip_prefix("self_attn.")
                .and_then(|f| f.split_once("_proj."))
                .filter(|(w, _)| ["q", "k", "v"].contains(w))
            {
                let hf_block = &name[..name.len() - field.len()];
                let parts: Vec<Tensor> = ["q", "k", "v"]
                    .iter()
                    .filter_map(|x| get(&format!("{hf_block}self_attn.{x}_proj.{kind}")))
                    .collect();
                if parts.len() == 3 {
                    if which == "q" {
                        out.insert(
                            format!("{block}.attn.in_proj_{kind}"),
                            Tensor::cat(&parts, 0)?,
                        );
                    }
                    continue;
                }
            }
        }
        out.insert(rename(name).unwrap_or_else(|| name.to_string()), t);
    }
    Ok(WeightsFile::from_tensors(weights.path(), out))
}

/// What a Hugging Face `config.json` says about the towers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HfClipConfig {
    /// The image tower's `hidden_act`.
    pub vision_activation: Activation,
    /// The text tower's `hidden_act`.
    pub text_activation: Activation,
    /// The image tower's `num_attention_heads`.
    pub vision_heads: usize,
    /// The text tower's `num_attention_heads`.
    pub text_heads: usize,
}

impl HfClipConfig {
    /// Reads the `config.json` in the folder of `weights` (as `save_pretrained` writes it), if
    /// there is one. Values it leaves out take `transformers`' defaults (`quick_gelu`, 12
    /// vision heads, 8 text heads).
    pub fn beside(weights: &Path) -> Result<Option<Self>> {
        let path: PathBuf = weights
            .parent()
            .map_or_else(|| PathBuf::from("config.json"), |d| d.join("config.json"));
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Self::from_json(&text)
            .map(Some)
            .map_err(|reason| Error::WeightsFormat { path, reason })
    }

    /// Parses a `CLIPModel` `config.json`.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("config.json is not JSON: {e}"))?;
        let tower = |key: &str, default_heads: usize| -> std::result::Result<_, String> {
            let cfg = value.get(key);
            let act = match cfg
                .and_then(|c| c.get("hidden_act"))
                .and_then(|a| a.as_str())
            {
                None => Activation::QuickGelu,
                Some(a) => Activation::from_hf(a).ok_or_else(|| {
                    format!("{key}.hidden_act `{a}` is not supported (quick_gelu, gelu)")
                })?,
            };
            let heads = match cfg.and_then(|c| c.get("num_attention_heads")) {
                None => default_heads,
                Some(h) => h
                    .as_u64()
                    .filter(|&h| h > 0)
                    .ok_or_else(|| format!("{key}.num_attention_heads `{h}` is not a count"))?
                    as usize,
            };
            Ok((act, heads))
        };
        let (vision_activation, vision_heads) = tower("vision_config", 12)?;
        let (text_activation, text_heads) = tower("text_config", 8)?;
        Ok(Self {
            vision_activation,
            text_activation,
            vision_heads,
            text_heads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_follow_the_openai_layout() {
        let cases = [
            (
                "vision_model.encoder.layers.3.layer_norm2.bias",
                "visual.transformer.resblocks.3.ln_2.bias",
            ),
            (
                "text_model.encoder.layers.11.mlp.fc1.weight",
                "transformer.resblocks.11.mlp.c_fc.weight",
            ),
            (
                "text_model.encoder.layers.0.self_attn.out_proj.bias",
                "transformer.resblocks.0.attn.out_proj.bias",
            ),
            ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
        ];
        for (hf, openai) in cases {
            assert_eq!(rename(hf).as_deref(), Some(openai), "{hf}");
        }
        assert_eq!(
            rename("vision_model.encoder.layers.0.self_attn.q_proj.weight"),
            None
        );
    }

    #[test]
    fn config_defaults_and_values() {
        let c = HfClipConfig::from_json(
            r#"{"text_config": {"hidden_act": "gelu", "num_attention_heads": 2}, "vision_config": {}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.text_activation, Activation::Gelu);
        assert_eq!(c.text_heads, 2);
        assert_eq!(c.vision_activation, Activation::QuickGelu);
        assert_eq!(c.vision_heads, 12);
        assert!(HfClipConfig::from_json(r#"{"vision_config": {"hidden_act": "relu"}}"#).is_err());
    }
}
