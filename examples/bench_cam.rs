//! Times one CAM method on a ResNet with seeded random weights, for `tools/bench/bench_cam.py`,
//! which runs it interleaved with pytorch-grad-cam. Prints one JSON object with the
//! per-iteration times in ms (model creation and process start excluded).
//!
//! ```text
//! cargo run --release --example bench_cam -- --arch resnet50 --method ablationcam --iters 3
//! ```

use std::time::Instant;

use clap::Parser;
use xai::cam::{Cam, Method, Targets};
use xai::models::candle_core::{Device, Tensor};
use xai::models::ResNetConfig;

#[derive(Parser)]
struct Args {
    /// resnet18 … resnet152.
    #[arg(long, default_value = "resnet50")]
    arch: String,
    /// gradcam, gradcam++, …, scorecam.
    #[arg(long, default_value = "gradcam")]
    method: String,
    /// AblationCAM / ScoreCAM model evaluations per forward pass (default: the reference's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Timed iterations.
    #[arg(long, default_value_t = 3)]
    iters: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    size: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dev = Device::Cpu;
    let model = xai::models::testing::random_resnet(ResNetConfig::from_arch(&args.arch)?, 0, &dev)?;
    let method: Method = args.method.parse()?;
    let cam = Cam::new(&model, method.build(args.batch_size)?)?;
    let x = Tensor::randn(0f32, 1.0, (1, 3, args.size, args.size), &dev)?;
    for _ in 0..args.warmup {
        cam.compute(&x, &Targets::TopClass)?.normalise();
    }
    let mut ms = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let t = Instant::now();
        let map = cam.compute(&x, &Targets::TopClass)?.normalise();
        std::hint::black_box(map);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "{}",
        serde_json::json!({"arch": args.arch, "method": method.name(), "ms": ms})
    );
    Ok(())
}
