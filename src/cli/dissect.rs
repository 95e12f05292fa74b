//! `xai dissect`: label the units of a model's layers with concepts (CLIP-Dissect style).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use xai::dissect::broden::BrodenProbe;
use xai::dissect::clip_similarity::{ClipEncoder, ClipSimilarity, ImageTextEncoder};
use xai::dissect::dissect::{dissect, LabelConfig};
use xai::dissect::netdissect::ConceptMasks;
use xai::dissect::scorer::{testworld_concepts, ConceptSimilarity, GroundTruthSimilarity};
use xai::dissect::{ConceptSet, Pooling, ProbeSet, Similarity};
use xai::models::clip::ClipArch;

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub(crate) struct DissectArgs {
    /// The model to dissect: testworld-objects (default), testworld-scenes, or a ResNet
    /// architecture with --target-weights.
    #[arg(long, default_value = "testworld-objects")]
    target: String,
    /// Weights of the target model (.safetensors or .pth).
    #[arg(long, value_name = "FILE")]
    target_weights: Option<PathBuf>,
    /// Layers to dissect, comma-separated, in output order.
    #[arg(long, value_delimiter = ',', default_value = "layer3,layer4,fc")]
    layers: Vec<String>,
    /// CLIP model for the concept similarities: RN50, ViT-B/16 or ViT-B/32. Without it the
    /// test world's ground-truth concept annotations are used (offline).
    #[arg(long)]
    clip: Option<String>,
    /// CLIP weights file: an OpenAI/open_clip state dict (.safetensors, .pt, .bin), one of
    /// OpenAI's TorchScript files (~/.cache/clip/RN50.pt) or a Hugging Face CLIPModel.
    /// Default with --clip: $XAI_WEIGHTS_CLIP_RN50 (…_VIT_B_32, …_VIT_B_16), then
    /// $XAI_WEIGHTS_DIR/clip-rn50.* or RN50.*, then ~/.cache/clip/RN50.pt (where OpenAI's
    /// clip.load leaves it), then the Hugging Face cache (openai/clip-vit-base-patch32, …16).
    #[arg(long, value_name = "FILE")]
    clip_weights: Option<PathBuf>,
    /// CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz).
    #[arg(long, value_name = "FILE")]
    clip_vocab: Option<PathBuf>,
    /// Probe images, a folder read recursively (sorted paths). With the ground-truth scorer:
    /// the `images` folder of `xai testworld generate`. A Broden-style folder (with
    /// index.csv and label.csv, as NetDissect's broden1_224) gives its images in index order,
    /// its labels as concepts and their masks. Default: --probe-scenes test-world scenes
    /// generated into OUT/probe.
    #[arg(long, value_name = "DIR")]
    probe: Option<PathBuf>,
    /// Number of test-world scenes generated when --probe is absent (seeds 0..N).
    #[arg(long, default_value_t = 200)]
    probe_scenes: usize,
    /// Concepts, one a line (blank lines skipped, repeats kept once). Default: the test
    /// world's 42 concepts, or a Broden folder's labels (which this then restricts).
    #[arg(long, value_name = "FILE")]
    concepts: Option<PathBuf>,
    /// Similarity function: soft-wpmi, wpmi, cos, cos3, rank-reorder.
    #[arg(long, default_value = "soft-wpmi")]
    similarity: String,
    /// `clip`: CLIP-Dissect's labelling from concept similarities; `iou`: classic Network
    /// Dissection, IoU of each unit's top-quantile regions with per-pixel concept masks
    /// (spatial layers only; others in --layers are skipped).
    #[arg(long, default_value = "clip")]
    method: String,
    /// `iou` method: the top fraction of each unit's activations forming its regions.
    #[arg(long, default_value_t = 0.005)]
    quantile: f64,
    /// `iou` method: a unit is labelled when its best IoU reaches this.
    #[arg(long, default_value_t = 0.04)]
    iou_threshold: f32,
    /// Pooling of spatial maps per unit: avg or max.
    #[arg(long, default_value = "avg")]
    pool: String,
    /// Images per unit of soft-wpmi/wpmi (default: the function's, 100 / 28).
    #[arg(long)]
    top_k: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Activation cache (see `xai_dissect::cache`): chunks of pooled activations, keyed by
    /// model, layers, pooling, preprocessing and probe set; a killed run resumes from it.
    /// Default: OUT/cache.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Probe images per cache chunk.
    #[arg(long, default_value_t = 256)]
    chunk_size: usize,
    /// Fill only shard i of n of the cache (chunk c belongs to shard c mod n) and stop; `auto/n`
    /// takes i from $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX. Label afterwards with the
    /// same command without --shard, which refuses a cache with missing chunks.
    #[arg(long, value_name = "i/n")]
    shard: Option<String>,
    /// Label from an existing cache entry (a folder with manifest.json and chunk files, e.g.
    /// written from Python) instead of running the model.
    #[arg(long, value_name = "DIR")]
    from_cache: Option<PathBuf>,
    /// Output folder: descriptions.csv, dissection.json, summary, charts, montages, reports.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `i/n`, or `auto/n` with i from the job array's environment.
fn parse_shard_arg(s: &str) -> CliResult<(usize, usize)> {
    if let Some(n) = s.strip_prefix("auto/") {
        let index = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .ok_or_else(|| {
                CliError::Msg(
                    "--shard auto/n needs $SLURM_ARRAY_TASK_ID (Slurm job array) or $JOB_COMPLETION_INDEX (Kubernetes Indexed Job)".into(),
                )
            })?;
        return super::cam::parse_shard(&format!("{}/{n}", index.trim()));
    }
    super::cam::parse_shard(s)
}

/// The CLIP weights and BPE merges files: `--clip-weights`, else (with `--clip ARCH`) the
/// places `resolve_clip_weights` searches (`$XAI_WEIGHTS_CLIP_<ARCH>`, `$XAI_WEIGHTS_DIR`,
/// OpenAI's `~/.cache/clip`, the Hugging Face cache); for the merges `--clip-vocab`, else
/// `$XAI_CLIP_VOCAB` or a `bpe_simple_vocab_16e6.txt.gz` beside the weights.
fn clip_files(a: &DissectArgs, arch: Option<ClipArch>) -> CliResult<(PathBuf, PathBuf)> {
    let weights = match (arch, &a.clip_weights) {
        (Some(arch), explicit) => {
            xai::models::source::resolve_clip_weights(arch, explicit.as_deref())?
        }
        (None, Some(file)) => file.clone(),
        (None, None) => {
            return Err(CliError::Msg(
                "CLIP needs --clip RN50|ViT-B/32|ViT-B/16 or --clip-weights FILE".into(),
            ))
        }
    };
    const MERGES: &str = "bpe_simple_vocab_16e6.txt.gz";
    let beside = weights.parent().map(|d| d.join(MERGES));
    let vocab = a
        .clip_vocab
        .clone()
        .or_else(|| std::env::var_os("XAI_CLIP_VOCAB").map(PathBuf::from))
        .or_else(|| beside.clone().filter(|p| p.exists()))
        .ok_or_else(|| {
            CliError::Msg(format!(
                "CLIP's tokenizer needs its merges file: pass --clip-vocab {MERGES} (it ships with the CLIP and open_clip Python packages), set $XAI_CLIP_VOCAB, or put it beside the weights ({})",
                beside.map(|p| p.display().to_string()).unwrap_or_default()
            ))
        })?;
    Ok((weights, vocab))
}

/// `S` for all probe images, chunk by chunk (each chunk's image embeddings cached), with a
/// progress bar.
fn clip_similarities<E: ImageTextEncoder>(
    clip: &ClipSimilarity<E>,
    images: &[PathBuf],
    chunk_size: usize,
) -> xai::dissect::Result<ndarray::Array2<f32>> {
    let bar = bar(images.len() as u64, "CLIP image embeddings");
    let mut parts = Vec::new();
    for (c, chunk) in images.chunks(chunk_size.max(1)).enumerate() {
        parts.push(clip.similarities(c * chunk_size.max(1), chunk)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(ndarray::Axis(0), &views).map_err(|e| xai::dissect::Error::Shape {
        what: "the chunks of S".into(),
        actual: vec![parts.len()],
        expected: e.to_string(),
    })
}

/// Embeds (or finds cached) the CLIP image chunks `c` with `c mod n = i`, as the activation
/// cache's shards split the probe set; returns how many chunks that was.
fn fill_clip_shard<E: ImageTextEncoder>(
    clip: &ClipSimilarity<E>,
    images: &[PathBuf],
    chunk_size: usize,
    i: usize,
    n: usize,
) -> xai::dissect::Result<usize> {
    let size = chunk_size.max(1);
    let mine: Vec<(usize, &[PathBuf])> = images
        .chunks(size)
        .enumerate()
        .filter(|(c, _)| c % n.max(1) == i)
        .collect();
    let bar = bar(mine.len() as u64, "CLIP image chunks");
    for (c, chunk) in &mine {
        clip.image_embeddings(c * size, chunk)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(mine.len())
}

pub(crate) fn run(a: DissectArgs) -> CliResult<()> {
    let clip_arch = a.clip.as_deref().map(ClipArch::parse).transpose()?;
    let use_clip = a.clip.is_some() || a.clip_weights.is_some() || a.clip_vocab.is_some();
    if use_clip && a.method == "iou" {
        return Err(CliError::Msg(
            "--method iou scores units against per-pixel concept masks, not CLIP; leave out --clip/--clip-weights/--clip-vocab".into(),
        ));
    }
    if !["clip", "iou"].contains(&a.method.as_str()) {
        return Err(CliError::Msg(format!(
            "unknown --method `{}`; use clip or iou",
            a.method
        )));
    }
    let dis = |e: xai::dissect::Error| CliError::Msg(e.to_string());
    let mut similarity = Similarity::from_name(&a.similarity).map_err(dis)?;
    if let Some(k) = a.top_k {
        if k == 0 {
            return Err(CliError::Msg("--top-k must be at least 1".into()));
        }
        similarity = similarity.with_top_k(k);
    }
    let pooling = match a.pool.as_str() {
        "avg" => Pooling::Avg,
        "max" => Pooling::Max,
        other => {
            return Err(CliError::Msg(format!(
                "unknown --pool `{other}`; use avg or max"
            )))
        }
    };
    if a.layers.is_empty() || a.layers.iter().any(|l| l.trim().is_empty()) {
        return Err(CliError::Msg(
            "--layers needs at least one layer name".into(),
        ));
    }
    let device = xai::models::candle_core::Device::Cpu;
    let model = xai::zoo::load(Some(&a.target), a.target_weights.as_deref(), &device)?;
    for l in &a.layers {
        model.layer(l)?;
    }
    // A Broden-style folder brings its own images (in index order), concepts and kinds.
    let broden = match &a.probe {
        Some(p) if BrodenProbe::is_broden(p) => Some(BrodenProbe::open(p).map_err(dis)?),
        _ => None,
    };
    let concept_file = match &a.concepts {
        Some(p) => {
            let set = ConceptSet::from_file(p).map_err(dis)?;
            if set.blank_lines + set.duplicates > 0 {
                eprintln!(
                    "{}: {} concepts ({} blank lines and {} repeats skipped)",
                    p.display(),
                    set.len(),
                    set.blank_lines,
                    set.duplicates
                );
            }
            Some(set.names().to_vec())
        }
        None => None,
    };
    let broden = match (broden, &concept_file) {
        // CLIP scores any text; the masks only know the folder's labels.
        (Some(b), Some(names)) if !use_clip => Some(b.with_concepts(names).map_err(dis)?),
        (b, _) => b,
    };
    let all_kinds: BTreeMap<String, String> = match &broden {
        Some(b) => b.kinds(),
        None => testworld_concepts().into_iter().collect(),
    };
    let concepts: Vec<String> = match (concept_file, &broden) {
        (Some(names), _) => names,
        (None, Some(b)) => b.concepts().to_vec(),
        (None, None) => testworld_concepts().into_iter().map(|(n, _)| n).collect(),
    };
    let probe = match (&broden, &a.probe) {
        (Some(b), _) => b.probe_set(),
        (None, Some(p)) => ProbeSet::from_dir(p).map_err(dis)?,
        (None, None) => ProbeSet::from_dir(&generate_probe(&a.out.join("probe"), a.probe_scenes)?)
            .map_err(dis)?,
    };
    let kinds: BTreeMap<String, String> = concepts
        .iter()
        .filter_map(|c| all_kinds.get(c).map(|k| (c.clone(), k.clone())))
        .collect();
    let ground_truth = GroundTruthSimilarity::new(concepts.clone());
    let (masks, scorer): (&dyn ConceptMasks, &dyn ConceptSimilarity) = match &broden {
        Some(b) => (b, b),
        None => (&ground_truth, &ground_truth),
    };
    let cache_dir = a.cache.clone().unwrap_or_else(|| a.out.join("cache"));
    let clip_scorer = if use_clip {
        let (weights, vocab) = clip_files(&a, clip_arch)?;
        let encoder = ClipEncoder::load(&weights, &vocab, clip_arch, &device)
            .map_err(dis)?
            .with_batch_size(a.batch_size);
        eprintln!(
            "CLIP {} from {}: embedding {} concepts",
            encoder.clip().arch_name(),
            weights.display(),
            concepts.len()
        );
        Some(
            ClipSimilarity::new(encoder, concepts.clone(), Some(&cache_dir.join("clip")))
                .map_err(dis)?,
        )
    } else {
        None
    };
    let result = match a.method.as_str() {
        "iou" => {
            let spatial: Vec<String> = a
                .layers
                .iter()
                .filter(|l| {
                    let keep = model
                        .layer(l)
                        .map(|i| matches!(i.layout, xai::models::Layout::Spatial))
                        .unwrap_or(false);
                    if !keep {
                        eprintln!("{l}: no spatial maps, skipped by the iou method");
                    }
                    keep
                })
                .cloned()
                .collect();
            if spatial.is_empty() {
                return Err(CliError::Msg(
                    "the iou method needs at least one convolutional layer in --layers (e.g. layer3,layer4)".into(),
                ));
            }
            let config = xai::dissect::netdissect::IouConfig {
                quantile: a.quantile,
                threshold: a.iou_threshold,
                batch_size: a.batch_size,
                ..Default::default()
            };
            let bar = bar(2 * probe.len() as u64, "iou dissection");
            let d = xai::dissect::netdissect::iou_dissect(
                &*model,
                &a.target,
                &spatial,
                &probe.images,
                &concepts,
                &kinds,
                masks,
                &config,
                &mut |done, _| bar.set_position(done as u64),
            )
            .map_err(dis)?;
            bar.finish_and_clear();
            d
        }
        "clip" => {
            let (acts, images) = if let Some(dir) = &a.from_cache {
                let (m, acts) = xai::dissect::cache::load(dir, None).map_err(dis)?;
                if m.layers != a.layers {
                    return Err(CliError::Msg(format!(
                        "{}: the cache holds layers {:?}, not the --layers asked for ({:?})",
                        dir.display(),
                        m.layers,
                        a.layers
                    )));
                }
                (acts, m.images)
            } else {
                let identity = match &a.target_weights {
                    Some(w) => xai::dissect::cache::file_identity(w).map_err(dis)?,
                    None => a.target.clone(),
                };
                let spec = xai::dissect::cache::CacheSpec::new(
                    &cache_dir,
                    &identity,
                    &*model,
                    &a.layers,
                    pooling,
                    &probe.images,
                    a.chunk_size,
                )
                .map_err(dis)?;
                let shard = a.shard.as_deref().map(parse_shard_arg).transpose()?;
                let merged = match (shard, xai::dissect::cache::sharded(&spec.dir)) {
                    // Filled by n workers: merge what they wrote, refuse what is missing.
                    (None, Some(n)) => {
                        eprintln!("cache {}: merging {n} shards", spec.dir.display());
                        Some(
                            xai::dissect::cache::load(&spec.dir, Some(n))
                                .map_err(dis)?
                                .1,
                        )
                    }
                    _ => None,
                };
                let acts = match merged {
                    Some(acts) => acts,
                    None => {
                        let bar = bar(0, "activation chunks");
                        let report = xai::dissect::cache::fill(
                            &spec,
                            &*model,
                            pooling,
                            a.batch_size,
                            shard,
                            &mut |done, total| {
                                bar.set_length(total as u64);
                                bar.set_position(done as u64)
                            },
                        )
                        .map_err(dis)?;
                        bar.finish_and_clear();
                        eprintln!(
                            "cache {}: {} chunks computed, {} reused",
                            spec.dir.display(),
                            report.computed,
                            report.reused
                        );
                        if let Some((i, n)) = shard {
                            if let Some(clip) = &clip_scorer {
                                let done = fill_clip_shard(clip, &probe.images, a.chunk_size, i, n)
                                    .map_err(dis)?;
                                eprintln!("CLIP: {done} image chunks of shard {i}/{n} embedded");
                            }
                            println!(
                                "shard {i}/{n} done ({} of {} chunks); label with the same command without --shard",
                                report.assigned, spec.manifest.chunks
                            );
                            return Ok(());
                        }
                        xai::dissect::cache::load(&spec.dir, None).map_err(dis)?.1
                    }
                };
                (acts, probe.images.clone())
            };
            let s = match &clip_scorer {
                Some(clip) => clip_similarities(clip, &images, a.chunk_size).map_err(dis)?,
                None => scorer.similarities(0, &images).map_err(dis)?,
            };
            let config = LabelConfig {
                similarity,
                ..LabelConfig::default()
            };
            let layers: Vec<(String, _)> = a.layers.iter().cloned().zip(acts).collect();
            let result = dissect(
                &a.target,
                &layers,
                s.view(),
                &concepts,
                kinds,
                &images,
                &config,
            )
            .map_err(dis)?;
            result
        }
        other => {
            return Err(CliError::Msg(format!(
                "unknown --method `{other}`; use clip or iou"
            )))
        }
    };
    let written = xai::dissect::report::write_outputs_with(
        &result,
        &a.out,
        &xai::dissect::report::ReportConfig::default(),
    )
    .map_err(|e| CliError::Msg(e.to_string()))?;
    for w in &written.warnings {
        eprintln!("warning: {w}");
    }
    for p in written.files {
        println!("{}", p.display());
    }
    Ok(())
}

/// Renders `n` test-world scenes (seeds 0..n, 112×112, the built-in models' resolution) with
/// their concept masks in the layout of `xai testworld generate`, unless already there;
/// returns the images folder.
fn generate_probe(dir: &Path, n: usize) -> CliResult<PathBuf> {
    if n == 0 {
        return Err(CliError::Msg("--probe-scenes must be at least 1".into()));
    }
    let bar = bar(n as u64, "probe scenes");
    let probe =
        xai::dissect::probe::testworld_probe(dir, n, &mut |done| bar.set_position(done as u64))
            .map_err(|e| CliError::Msg(e.to_string()))?;
    bar.finish_and_clear();
    Ok(probe.root)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}
