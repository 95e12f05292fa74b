//! Times one superpixel method on an image, for `tools/bench/bench_segment.py`, which runs it
//! interleaved with scikit-image. Prints one JSON object with the per-iteration times in ms
//! (image decoding and process start excluded) and the number of segments.
//!
//! ```text
//! cargo run --release --example bench_segment -- --method quickshift --image IMG --iters 5
//! ```
//!
//! The parameters are LIME's for quickshift and scikit-image's defaults for SLIC and
//! felzenszwalb, or any JSON accepted by `SegmentMethod` (`--params '{"method": "slic", …}'`).

use std::time::Instant;

use clap::Parser;
use xai::lime::segment::{image_to_float, SegmentMethod, Segmenter};

#[derive(Parser)]
struct Args {
    /// quickshift, slic or felzenszwalb (with default parameters).
    #[arg(long, default_value = "quickshift")]
    method: String,
    /// Parameters as JSON (overrides --method).
    #[arg(long)]
    params: Option<String>,
    /// Image file.
    #[arg(long)]
    image: std::path::PathBuf,
    /// Timed iterations.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let method = match &args.params {
        Some(json) => serde_json::from_str::<SegmentMethod>(json)?,
        None => SegmentMethod::with_defaults(&args.method)?,
    };
    let rgb = xai::models::preprocess::load_image(&args.image)?;
    let image = image_to_float(&rgb);
    let mut segments = 0;
    for _ in 0..args.warmup {
        method.segment(image.view())?;
    }
    let mut ms = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let t = Instant::now();
        let labels = method.segment(image.view())?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        segments = labels.iter().copied().max().unwrap_or(0) + 1;
    }
    let out = serde_json::json!({
        "method": method.name(),
        "params": method,
        "height": image.dim().0,
        "width": image.dim().1,
        "threads": std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        "segments": segments,
        "ms": ms,
    });
    println!("{out}");
    Ok(())
}
