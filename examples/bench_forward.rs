//! Times the forward pass of a ResNet on CPU, for `tools/bench/bench_forward.py`, which runs
//! it interleaved with torch. Prints one JSON object with the per-iteration times in ms.
//!
//! ```text
//! cargo run --release --example bench_forward -- --arch resnet50 --batch 1 --iters 10
//! ```

use std::time::Instant;

use clap::Parser;
use xai::models::candle_core::{Device, Tensor};
use xai::models::{Backbone, ResNetConfig};

#[derive(Parser)]
struct Args {
    /// resnet18 … resnet152.
    #[arg(long, default_value = "resnet50")]
    arch: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    size: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dev = Device::Cpu;
    let model = xai::models::testing::random_resnet(ResNetConfig::from_arch(&args.arch)?, 0, &dev)?;
    let x = Tensor::randn(0f32, 1.0, (args.batch, 3, args.size, args.size), &dev)?;
    for _ in 0..args.warmup {
        model.forward(&x)?;
    }
    let mut ms = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let t = Instant::now();
        let y = model.forward(&x)?;
        y.sum_all()?.to_scalar::<f32>()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "{}",
        serde_json::json!({"arch": args.arch, "batch": args.batch, "ms": ms})
    );
    Ok(())
}
