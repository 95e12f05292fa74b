//! TorchScript archives (`torch.jit.save`, e.g. the `RN50.pt` and `ViT-B-32.pt` files that
//! OpenAI's `clip.load` keeps in `~/.cache/clip/`).
//!
//! Such an archive is a zip like `torch.save`'s, but its `data.pkl` pickles the module
//! itself rather than a state dict: each module is an object (`__torch__.…` class) whose
//! pickled state is a dict of its attributes, where parameters and buffers are tensors and
//! submodules are nested objects. Walking those objects and joining the attribute names with
//! dots gives exactly the keys of the module's `state_dict()`. The tensors' storages live in
//! `<archive>/data/<key>` as in `torch.save`'s format. The TorchScript code in the archive is
//! never read, let alone run.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::Tensor;

use super::legacy::{strided_view, tensor_ref, StorageRef, TensorRef};
use crate::{Error, Result};

/// Whether the zip archive's entry names mark a TorchScript archive rather than a
/// `torch.save` checkpoint: TorchScript writes `constants.pkl` and the module's `code/`.
fn is_torchscript(names: impl IntoIterator<Item = impl AsRef<str>>) -> bool {
    names.into_iter().any(|n| {
        let n = n.as_ref();
        n.ends_with("/constants.pkl") || n.contains("/code/")
    })
}

/// Every tensor attribute of the scripted module at `path`, named as in its `state_dict()`;
/// `None` when the file is not a TorchScript archive (a `torch.save` checkpoint, or a zip this
/// reader cannot open, which candle's `torch.save` reader then reports).
pub(super) fn read(path: &Path) -> Result<Option<Vec<(String, Tensor)>>> {
    let bad = |reason: String| Error::WeightsFormat {
        path: path.into(),
        reason: format!("TorchScript archive: {reason}"),
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let Ok(mut zip) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        return Ok(None);
    };
    if !is_torchscript(zip.file_names().filter_map(|name| name.ok())) {
        return Ok(None);
    }
    let data_pkl = zip
        .file_names()
        .filter_map(|name| name.ok())
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .min_by_key(|n| n.len())
        .map(|n| n.into_owned())
        .ok_or_else(|| bad("no <archive>/data.pkl entry".into()))?;
    let dir = data_pkl.trim_end_matches("data.pkl").to_string();

    let root = {
        let entry = zip
            .by_name(&data_pkl)
            .map_err(|e| bad(format!("cannot open {data_pkl} ({e})")))?;
        let mut reader = std::io::BufReader::new(entry);
        let mut stack = Stack::empty();
        stack
            .read_loop(&mut reader)
            .and_then(|()| stack.finalize())
            .map_err(|e| bad(format!("cannot read {data_pkl}: {e}")))?
    };

    let mut storages: HashMap<String, StorageRef> = HashMap::new();
    let mut refs: Vec<(String, TensorRef)> = Vec::new();
    collect(root, "", &mut storages, &mut refs);
    if refs.is_empty() {
        return Err(bad(format!(
            "{data_pkl} holds no module with tensor attributes"
        )));
    }

    let mut flat: HashMap<String, Tensor> = HashMap::new();
    let mut out = Vec::with_capacity(refs.len());
    for (name, t) in refs {
        if !flat.contains_key(&t.key) {
            let storage = &storages[&t.key];
            let entry_name = format!("{dir}data/{}", t.key);
            let mut entry = zip.by_name(&entry_name).map_err(|e| {
                bad(format!(
                    "tensor {name} refers to missing entry {entry_name} ({e})"
                ))
            })?;
            let mut raw = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut raw)
                .map_err(|e| bad(format!("cannot read {entry_name} ({e})")))?;
            let tensor = storage.flat(&raw)?.ok_or_else(|| {
                bad(format!(
                    "storage {entry_name} holds {} elements, {} expected",
                    raw.len() / storage.dtype.size_in_bytes(),
                    storage.numel
                ))
            })?;
            flat.insert(t.key.clone(), tensor);
        }
        let view = strided_view(&flat[&t.key], &t).map_err(|e| bad(format!("{name}: {e}")))?;
        out.push((name, view));
    }
    Ok(Some(out))
}

/// Walks a pickled module: its state dict's tensors are named `prefix + attribute`, its
/// submodules are walked with `prefix + attribute + "."`.
fn collect(
    obj: Object,
    prefix: &str,
    storages: &mut HashMap<String, StorageRef>,
    out: &mut Vec<(String, TensorRef)>,
) {
    let state = match obj {
        Object::Build { args, .. } => *args,
        Object::Dict(items) => Object::Dict(items),
        _ => return,
    };
    let Object::Dict(items) = state else {
        return;
    };
    for (key, value) in items {
        let Object::Unicode(key) = key else { continue };
        match value {
            Object::Build { .. } => collect(value, &format!("{prefix}{key}."), storages, out),
            value => {
                if let Some(t) = tensor_ref(value, storages) {
                    out.push((format!("{prefix}{key}"), t));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_told_apart_by_their_entries() {
        assert!(is_torchscript(["RN50/data.pkl", "RN50/constants.pkl"]));
        assert!(is_torchscript(["m/code/__torch__/model.py", "m/data.pkl"]));
        assert!(!is_torchscript([
            "archive/data.pkl",
            "archive/data/0",
            "archive/version"
        ]));
    }
}
