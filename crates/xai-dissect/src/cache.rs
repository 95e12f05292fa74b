//! On-disk cache of pooled activations, chunk by chunk: killed runs resume, shards of a
//! large probe set are computed by separate workers, and users can bring their own
//! activations.
//!
//! # Format
//! A cache entry is one folder, `CACHE/<key>/`, where `<key>` is a 16-digit hex hash of the
//! model's identity, the layers, the pooling, the input preprocessing and the probe image
//! list (paths and sizes), so a change to any of them never reuses stale activations:
//! - `manifest.json`: `{"version": 1, "model": …, "layers": [...], "units": [...],
//!   "pooling": "avg", "images": [paths...], "chunk_size": 256, "chunks": n}`;
//! - `chunk_000000.safetensors` … : one per chunk of `chunk_size` consecutive probe images
//!   (the last may be shorter), holding one float32 tensor per layer, named by the layer,
//!   of shape `(rows, units)`: row `r` of chunk `c` is image `c·chunk_size + r`.
//!
//! Chunk files are written to a temporary name and renamed, so a chunk file that exists is
//! complete. To bring your own activations, write the manifest and the chunks in this layout
//! (e.g. with `safetensors.numpy.save_file`) and pass the folder to `--from-cache`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use xai_models::Backbone;

use crate::activations::{activations, Pooling};
use crate::{Error, Result};

/// What a cache entry holds; `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// The model's identity as given to [`CacheSpec::new`].
    pub model: String,
    /// Layers, in order.
    pub layers: Vec<String>,
    /// Units per layer.
    pub units: Vec<usize>,
    /// `avg` or `max`.
    pub pooling: String,
    /// The probe images, in row order.
    pub images: Vec<PathBuf>,
    /// Images per chunk.
    pub chunk_size: usize,
    /// Number of chunks.
    pub chunks: usize,
    /// `Some(n)` when the entry is filled by `n` shards: then labelling refuses missing
    /// chunks (naming their shards) instead of computing them.
    #[serde(default)]
    pub shards: Option<usize>,
}

/// What to cache: the model identity and everything else that determines the activations.
#[derive(Debug, Clone)]
pub struct CacheSpec {
    /// The manifest of the entry.
    pub manifest: Manifest,
    /// The entry's folder, `CACHE/<key>`.
    pub dir: PathBuf,
}

/// 64-bit FNV-1a: a stable hash (unlike `std`'s) for cache keys.
pub(crate) fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// FNV-1a's starting value.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// `hash` extended with each file's path and size, so a changed or replaced probe image
/// changes the key.
pub(crate) fn hash_files(mut hash: u64, files: &[PathBuf]) -> u64 {
    for p in files {
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        hash = fnv1a(hash, p.to_string_lossy().as_bytes());
        hash = fnv1a(hash, &size.to_le_bytes());
    }
    hash
}

/// Saves `tensors` as safetensors at `path` through the temporary file `tmp`, so that a file
/// at `path` is always complete.
pub(crate) fn save_tensors_atomic(
    tensors: &std::collections::HashMap<String, Tensor>,
    tmp: &Path,
    path: &Path,
) -> Result<()> {
    candle_core::safetensors::save(tensors, tmp)?;
    std::fs::rename(tmp, path).map_err(|e| Error::file(path, e))
}

/// A stable identity of a weights file: its name, size and a hash of its bytes.
pub fn file_identity(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    Ok(format!(
        "{}:{}:{:016x}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        bytes.len(),
        fnv1a(FNV_OFFSET, &bytes)
    ))
}

impl CacheSpec {
    /// The cache entry under `cache_dir` for `model` (an identity string: a built-in model's
    /// name, or [`file_identity`] of its weights) evaluated on `layers` of `images`.
    pub fn new(
        cache_dir: &Path,
        model_identity: &str,
        backbone: &dyn Backbone,
        layers: &[String],
        pooling: Pooling,
        images: &[PathBuf],
        chunk_size: usize,
    ) -> Result<Self> {
        if chunk_size == 0 {
            return Err(Error::Parameter {
                name: "chunk_size",
                reason: "must be at least 1".into(),
            });
        }
        let units = layers
            .iter()
            .map(|l| backbone.layer(l).map(|i| i.channels))
            .collect::<xai_models::Result<Vec<_>>>()?;
        let spec = backbone.input_spec();
        let mut h = fnv1a(FNV_OFFSET, model_identity.as_bytes());
        h = fnv1a(
            h,
            format!("{layers:?}{units:?}{}", pooling.name()).as_bytes(),
        );
        h = fnv1a(h, format!("{spec:?}{chunk_size}").as_bytes());
        h = hash_files(h, images);
        Ok(Self {
            dir: cache_dir.join(format!("{h:016x}")),
            manifest: Manifest {
                version: 1,
                model: model_identity.to_string(),
                layers: layers.to_vec(),
                units,
                pooling: pooling.name().to_string(),
                images: images.to_vec(),
                chunk_size,
                chunks: images.len().div_ceil(chunk_size),
                shards: None,
            },
        })
    }

    fn chunk_path(dir: &Path, c: usize) -> PathBuf {
        dir.join(format!("chunk_{c:06}.safetensors"))
    }
}

/// What [`fill`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillReport {
    /// Chunks computed now.
    pub computed: usize,
    /// Chunks of this shard found already in the cache (a resumed run).
    pub reused: usize,
    /// Chunks belonging to this shard.
    pub assigned: usize,
}

/// Computes the missing chunks of the entry (only those with `c mod n == i` for
/// `shard = Some((i, n))`), writing each as soon as it is done, and the manifest.
/// `progress(done, assigned)` counts chunks.
pub fn fill(
    spec: &CacheSpec,
    model: &dyn Backbone,
    pooling: Pooling,
    batch_size: usize,
    shard: Option<(usize, usize)>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<FillReport> {
    let mut manifest = spec.manifest.clone();
    manifest.shards = shard.map(|(_, n)| n);
    let m = &manifest;
    std::fs::create_dir_all(&spec.dir).map_err(|e| Error::file(&spec.dir, e))?;
    write_atomic(
        &spec.dir.join("manifest.json"),
        &serde_json::to_vec_pretty(m).map_err(|e| Error::file(&spec.dir, e))?,
    )?;
    let (i, n) = shard.unwrap_or((0, 1));
    if n == 0 || i >= n {
        return Err(Error::Parameter {
            name: "shard",
            reason: format!("{i}/{n}: expected i/n with 0 <= i < n"),
        });
    }
    let mine: Vec<usize> = (0..m.chunks).filter(|c| c % n == i).collect();
    let mut report = FillReport {
        computed: 0,
        reused: 0,
        assigned: mine.len(),
    };
    for (done, &c) in mine.iter().enumerate() {
        let path = CacheSpec::chunk_path(&spec.dir, c);
        if path.exists() {
            report.reused += 1;
        } else {
            let start = c * m.chunk_size;
            let end = (start + m.chunk_size).min(m.images.len());
            let acts = activations(
                model,
                &m.layers,
                &m.images[start..end],
                pooling,
                batch_size,
                &mut |_| {},
            )?;
            let tensors = m
                .layers
                .iter()
                .zip(acts)
                .map(|(l, a)| {
                    let (rows, cols) = a.dim();
                    let data: Vec<f32> = a.into_iter().collect();
                    Ok((
                        l.clone(),
                        Tensor::from_vec(data, (rows, cols), &Device::Cpu)?,
                    ))
                })
                .collect::<Result<std::collections::HashMap<_, _>>>()?;
            let tmp = spec.dir.join(format!(".chunk_{c:06}.tmp"));
            save_tensors_atomic(&tensors, &tmp, &path)?;
            report.computed += 1;
        }
        progress(done + 1, mine.len());
    }
    Ok(report)
}

/// Reads a complete cache entry: every layer's activations `(N, units)`, in the manifest's
/// layer order, with its manifest. Refuses an entry with missing chunks (naming them and the
/// shards they belong to, for `n` shards if given) or chunks of the wrong shape.
pub fn load(dir: &Path, shards: Option<usize>) -> Result<(Manifest, Vec<Array2<f32>>)> {
    let mpath = dir.join("manifest.json");
    let text = std::fs::read_to_string(&mpath).map_err(|e| {
        Error::file(
            &mpath,
            format!("{e}; not an activation cache (see xai_dissect::cache for the layout)"),
        )
    })?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::file(&mpath, format!("bad manifest: {e}")))?;
    if m.version != 1 || m.layers.len() != m.units.len() || m.chunk_size == 0 {
        return Err(Error::file(
            &mpath,
            "unsupported manifest (version 1 with one unit count per layer and chunk_size ≥ 1 expected)",
        ));
    }
    if m.chunks != m.images.len().div_ceil(m.chunk_size) {
        return Err(Error::file(
            &mpath,
            format!(
                "{} chunks do not cover {} images of {} per chunk",
                m.chunks,
                m.images.len(),
                m.chunk_size
            ),
        ));
    }
    let shards = shards.or(m.shards);
    let missing: Vec<usize> = (0..m.chunks)
        .filter(|&c| !CacheSpec::chunk_path(dir, c).exists())
        .collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().take(20).map(|c| c.to_string()).collect();
        let shard_note = match shards {
            Some(n) if n > 0 => {
                let mut s: Vec<usize> = missing.iter().map(|c| c % n).collect();
                s.dedup();
                s.sort_unstable();
                s.dedup();
                let names: Vec<String> = s.iter().map(|i| format!("{i}/{n}")).collect();
                format!(" (shards {} not finished)", names.join(", "))
            }
            _ => String::new(),
        };
        return Err(Error::file(
            dir,
            format!(
                "{} of {} chunks missing: {}{}{shard_note}; run the missing shards (or without --shard) to fill them",
                missing.len(),
                m.chunks,
                list.join(", "),
                if missing.len() > 20 { ", …" } else { "" }
            ),
        ));
    }
    let mut parts: Vec<Vec<f32>> = vec![Vec::new(); m.layers.len()];
    for c in 0..m.chunks {
        let path = CacheSpec::chunk_path(dir, c);
        let rows = (m.images.len() - c * m.chunk_size).min(m.chunk_size);
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| Error::file(&path, format!("unreadable chunk: {e}")))?;
        for ((layer, units), part) in m.layers.iter().zip(&m.units).zip(parts.iter_mut()) {
            let t = tensors
                .get(layer)
                .ok_or_else(|| Error::file(&path, format!("no tensor `{layer}` in the chunk")))?;
            if t.dims() != [rows, *units] {
                return Err(Error::file(
                    &path,
                    format!(
                        "`{layer}` has shape {:?}, expected [{rows}, {units}] (a chunk of another run?)",
                        t.dims()
                    ),
                ));
            }
            part.extend(
                t.to_dtype(candle_core::DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
        }
    }
    let n = m.images.len();
    let arrays = parts
        .into_iter()
        .zip(&m.units)
        .map(|(p, &u)| {
            Array2::from_shape_vec((n, u), p).map_err(|e| Error::Parameter {
                name: "cache",
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((m, arrays))
}

/// The number of shards an existing entry was filled by, if it was sharded.
pub fn sharded(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    serde_json::from_str::<Manifest>(&text).ok()?.shards
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // A name per process: shards write the same manifest concurrently.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::file(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::file(path, e))
}
