//! Embeds preprocessed images with CLIP's modified-ResNet image tower (RN50 and siblings).
//!
//! ```text
//! cargo run --release -p xai-models --example clip_rn_embed -- \
//!     WEIGHTS.safetensors PIXELS.npy OUT.npy [--prefix visual.] [--heads H] [--iters N] [--warmup W]
//! ```
//!
//! `PIXELS.npy` is `(N, 3, S, S)` float32, already normalised with CLIP's mean and std (S = 224
//! for RN50); `OUT.npy` receives the `(N, E)` embeddings (not normalised). With `--iters N` the
//! embedding is then timed N more times (after W untimed runs); the last line printed is JSON,
//! `{"batch": N, "load_ms": …, "ms": [...]}`. `tools/parity/make_clip_rn_fixtures.py --full`
//! drives it.

use std::collections::HashMap;
use std::time::Instant;

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use xai_models::candle_core::{Device, Tensor};
use xai_models::clip::ModifiedResNet;
use xai_models::WeightsFile;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    weights: String,
    pixels: String,
    out: String,
    prefix: String,
    heads: Option<usize>,
    iters: usize,
    warmup: usize,
}

fn parse() -> AnyResult<Args> {
    let mut positional = Vec::new();
    let mut args = Args {
        weights: String::new(),
        pixels: String::new(),
        out: String::new(),
        prefix: "visual.".into(),
        heads: None,
        iters: 0,
        warmup: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--prefix" => args.prefix = value()?,
            "--heads" => args.heads = Some(value()?.parse()?),
            "--iters" => args.iters = value()?.parse()?,
            "--warmup" => args.warmup = value()?.parse()?,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}").into()),
            _ => positional.push(a),
        }
    }
    let [weights, pixels, out]: [String; 3] = positional
        .try_into()
        .map_err(|_| "usage: clip_rn_embed WEIGHTS PIXELS.npy OUT.npy [--prefix P] [--heads H] [--iters N] [--warmup W]")?;
    (args.weights, args.pixels, args.out) = (weights, pixels, out);
    Ok(args)
}

fn main() -> AnyResult<()> {
    let args = parse()?;
    let device = Device::Cpu;
    let start = Instant::now();
    let file = WeightsFile::open(&args.weights, &device)?;
    // The tower's tensors only, so that the check for unexpected ones applies to them.
    let tensors: HashMap<String, Tensor> = file
        .names()
        .into_iter()
        .filter(|n| n.starts_with(&args.prefix))
        .filter_map(|n| Some((n.to_string(), file.get(n)?.clone())))
        .collect();
    let weights = WeightsFile::from_tensors(file.path(), tensors);
    let mut ck = weights.checkout("clip-modified-resnet");
    let tower = ModifiedResNet::from_checkout(&mut ck, &args.prefix, args.heads, &device)?;
    ck.finish(&["num_batches_tracked"], None)?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;

    let array = ArrayD::<f32>::read_npy(std::fs::File::open(&args.pixels)?)?;
    let shape = array.shape().to_vec();
    let pixels = Tensor::from_vec(array.iter().copied().collect::<Vec<_>>(), shape, &device)?;
    let embeds = tower.forward(&pixels)?;
    let (n, e) = embeds.dims2()?;
    let out = ArrayD::from_shape_vec(vec![n, e], embeds.flatten_all()?.to_vec1::<f32>()?)?;
    out.write_npy(std::fs::File::create(&args.out)?)?;

    for _ in 0..args.warmup {
        tower.forward(&pixels)?.sum_all()?.to_scalar::<f32>()?;
    }
    let mut ms = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let t = Instant::now();
        tower.forward(&pixels)?.sum_all()?.to_scalar::<f32>()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("{{\"batch\": {n}, \"embed_dim\": {e}, \"load_ms\": {load_ms:.1}, \"ms\": {ms:?}}}");
    Ok(())
}
