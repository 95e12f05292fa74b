//! Times xai-metrics' model-based metrics on a seeded random-weight ResNet, for
//! `tools/bench/bench_metrics.py` (which runs pytorch-grad-cam's beside it). Prints one JSON
//! object: per metric, the per-iteration times in ms (model building excluded).
//!
//! ```text
//! cargo run --release --example bench_metrics -- --arch resnet50 --size 224 --steps 100
//! ```
//!
//! The input is seeded and the map a fixed Gaussian blob, the same on both sides; deletion and
//! insertion move 1/`steps` of the pixels per step (batched, 32 images per forward pass);
//! ROADCombined uses percentiles 10..90 and the noisy linear imputer.

use std::time::Instant;

use clap::Parser;
use ndarray::Array2;
use xai::metrics::{deletion, insertion, ConfidenceScores, DeletionConfig, Road};
use xai::models::candle_core::{Device, Tensor};
use xai::models::{ClassProbability, ResNetConfig};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "resnet50")]
    arch: String,
    #[arg(long, default_value_t = 224)]
    size: usize,
    #[arg(long, default_value_t = 100)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    iters: usize,
    /// Metrics, comma-separated: deletion, insertion, road, confidence.
    #[arg(
        long,
        default_value = "deletion,insertion,road,confidence",
        value_delimiter = ','
    )]
    metrics: Vec<String>,
}

/// The map both sides use: a Gaussian blob off centre, in [0, 1].
fn blob(n: usize) -> Array2<f32> {
    let (cy, cx, s) = (0.4 * n as f32, 0.6 * n as f32, 0.15 * n as f32);
    Array2::from_shape_fn((n, n), |(r, c)| {
        let d = ((r as f32 - cy).powi(2) + (c as f32 - cx).powi(2)) / (2.0 * s * s);
        (-d).exp()
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dev = Device::Cpu;
    let model = xai::models::testing::random_resnet(ResNetConfig::from_arch(&args.arch)?, 0, &dev)?;
    let n = args.size;
    // A seeded input from a small LCG (candle's CPU generator cannot be seeded).
    let mut state = 12345u64;
    let data: Vec<f32> = (0..3 * n * n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    let x = Tensor::from_vec(data, (3, n, n), &dev)?;
    let map = blob(n);
    let target = ClassProbability(0);
    let cfg = DeletionConfig::default().with_steps(args.steps, n, n)?;
    let mut out = serde_json::Map::new();
    for name in &args.metrics {
        let mut times = Vec::new();
        for _ in 0..args.iters {
            let t = Instant::now();
            match name.as_str() {
                "deletion" => {
                    deletion(&model, &target, &x, map.view(), &cfg)?;
                }
                "insertion" => {
                    insertion(&model, &target, &x, map.view(), &cfg)?;
                }
                "road" => {
                    Road::default().combined(&model, &target, &x, map.view())?;
                }
                "confidence" => {
                    ConfidenceScores::compute(
                        &model,
                        &x.unsqueeze(0)?,
                        map.view().insert_axis(ndarray::Axis(0)),
                        &[&target],
                    )?;
                }
                other => return Err(format!("unknown metric `{other}`").into()),
            }
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        out.insert(name.clone(), serde_json::json!({ "ms": times }));
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
