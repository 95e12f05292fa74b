//! Times CLIP-Dissect's similarity functions on `S` and `A` from `.npy` files, for
//! `tools/bench/bench_similarity.py`, which runs it interleaved with the reference's torch code.
//! Prints one JSON object: per function, the per-iteration times in ms (file loading and
//! process start excluded) and a checksum of the result.
//!
//! ```text
//! cargo run --release --example bench_similarity -- --s S.npy --a A.npy --functions soft-wpmi,cos
//! ```

use std::time::Instant;

use clap::Parser;
use ndarray::Array2;
use ndarray_npy::ReadNpyExt;
use xai::dissect::similarity::Similarity;

#[derive(Parser)]
struct Args {
    /// Concept similarities S, (images, concepts) float32.
    #[arg(long)]
    s: std::path::PathBuf,
    /// Activations A, (images, units) float32.
    #[arg(long)]
    a: std::path::PathBuf,
    /// Similarity functions, comma-separated.
    #[arg(long, default_value = "soft-wpmi,wpmi,cos,cos3", value_delimiter = ',')]
    functions: Vec<String>,
    /// Timed iterations.
    #[arg(long, default_value_t = 2)]
    iters: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let s = Array2::<f32>::read_npy(std::fs::File::open(&args.s)?)?;
    let a = Array2::<f32>::read_npy(std::fs::File::open(&args.a)?)?;
    let mut out = serde_json::Map::new();
    for name in &args.functions {
        let f = Similarity::from_name(name)?;
        let mut times = Vec::new();
        let mut checksum = 0f64;
        for _ in 0..args.iters {
            let t = Instant::now();
            let r = f.compute(s.view(), a.view())?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            checksum = r.iter().filter(|v| v.is_finite()).map(|&v| v as f64).sum();
        }
        out.insert(
            name.clone(),
            serde_json::json!({ "ms": times, "checksum": checksum }),
        );
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
