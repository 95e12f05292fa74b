//! CLIP embeddings of preprocessed pixels and/or token ids, from a checkpoint.
//!
//! ```text
//! cargo run --release -p xai-models --example clip_embed -- \
//!     --weights ViT-B-32.safetensors --pixels pixels.npy --out-image image.npy \
//!     [--ids ids.npy --out-text text.npy] [--gelu] [--vision-heads H] [--text-heads H] \
//!     [--arch ViT-B/32] [--bench N]
//! ```
//!
//! `pixels.npy`: `(N, 3, S, S)` f32, already CLIP-preprocessed; `ids.npy`: `(N, context)`
//! int64 (or uint32) token ids. Outputs are `(N, E)` f32, not normalised. `--bench N` times
//! the image tower on N random images after one warm-up run.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use xai_models::clip::{Activation, Clip, ClipArch, ClipOptions};

#[derive(Default)]
struct Args {
    weights: Option<PathBuf>,
    pixels: Option<PathBuf>,
    ids: Option<PathBuf>,
    out_image: Option<PathBuf>,
    out_text: Option<PathBuf>,
    arch: Option<String>,
    bench: Option<usize>,
    options: ClipOptions,
}

fn parse() -> Result<Args, Box<dyn Error>> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--weights" => args.weights = Some(value()?.into()),
            "--pixels" => args.pixels = Some(value()?.into()),
            "--ids" => args.ids = Some(value()?.into()),
            "--out-image" => args.out_image = Some(value()?.into()),
            "--out-text" => args.out_text = Some(value()?.into()),
            "--arch" => args.arch = Some(value()?),
            "--bench" => args.bench = Some(value()?.parse()?),
            "--vision-heads" => args.options.vision_heads = Some(value()?.parse()?),
            "--text-heads" => args.options.text_heads = Some(value()?.parse()?),
            "--gelu" => args.options.activation = Some(Activation::Gelu),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

fn read_npy(path: &PathBuf, device: &Device) -> Result<Tensor, Box<dyn Error>> {
    let open = || std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()));
    if let Ok(a) = ndarray::ArrayD::<f32>::read_npy(open()?) {
        let shape = a.shape().to_vec();
        return Ok(Tensor::from_vec(
            a.iter().copied().collect::<Vec<_>>(),
            shape,
            device,
        )?);
    }
    if let Ok(a) = ndarray::ArrayD::<i64>::read_npy(open()?) {
        let shape = a.shape().to_vec();
        return Ok(Tensor::from_vec(
            a.iter().copied().collect::<Vec<_>>(),
            shape,
            device,
        )?);
    }
    let a = ndarray::ArrayD::<u32>::read_npy(open()?)
        .map_err(|e| format!("{}: not an f32, int64 or uint32 array: {e}", path.display()))?;
    let shape = a.shape().to_vec();
    Ok(Tensor::from_vec(
        a.iter().copied().collect::<Vec<_>>(),
        shape,
        device,
    )?)
}

fn write_npy(path: &PathBuf, t: &Tensor) -> Result<(), Box<dyn Error>> {
    let (n, e) = t.dims2()?;
    let a = ndarray::Array2::from_shape_vec((n, e), t.flatten_all()?.to_vec1::<f32>()?)?;
    a.write_npy(std::fs::File::create(path)?)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse()?;
    let device = Device::Cpu;
    let weights = args.weights.ok_or("--weights is required")?;
    let start = Instant::now();
    let clip = Clip::load_with(&weights, args.options, &device)?;
    eprintln!(
        "loaded {} ({:?} layout) in {:.2} s",
        clip.arch_name(),
        clip.layout(),
        start.elapsed().as_secs_f64()
    );
    if let Some(arch) = &args.arch {
        clip.check_arch(ClipArch::parse(arch)?)?;
    }
    if let Some(pixels) = &args.pixels {
        let x = read_npy(pixels, &device)?;
        let t = Instant::now();
        let e = clip.encode_image(&x)?;
        eprintln!(
            "encode_image {:?}: {:.3} s",
            x.dims(),
            t.elapsed().as_secs_f64()
        );
        if let Some(out) = &args.out_image {
            write_npy(out, &e)?;
        }
    }
    if let Some(ids) = &args.ids {
        let x = read_npy(ids, &device)?;
        let t = Instant::now();
        let e = clip.encode_text(&x)?;
        eprintln!(
            "encode_text {:?}: {:.3} s",
            x.dims(),
            t.elapsed().as_secs_f64()
        );
        if let Some(out) = &args.out_text {
            write_npy(out, &e)?;
        }
    }
    if let Some(n) = args.bench {
        let s = clip.image_size();
        let x = Tensor::randn(0f32, 1.0, (n, 3, s, s), &device)?;
        clip.encode_image(&x)?;
        let t = Instant::now();
        clip.encode_image(&x)?;
        let dt = t.elapsed().as_secs_f64();
        println!(
            "ours {} encode_image batch {n}: {dt:.3} s, {:.1} images/s",
            clip.arch_name(),
            n as f64 / dt
        );
    }
    Ok(())
}
