//! Times the forward pass of a ResNet on CPU, or a gradient, for `tools/bench/bench_forward.py`,
//! which runs it interleaved with torch. Prints one JSON object with the per-iteration times in
//! ms.
//!
//! Modes (`--mode`):
//! - `forward`: logits of the batch;
//! - `gradcam`: what Grad-CAM does: forward to `layer4` without gradients, then the gradient
//!   of the class-0 logit with respect to that activation (through avgpool and fc);
//! - `input-grad`: forward with gradients and back to the input (∂ logit₀ / ∂ input), through
//!   every convolution and the stem max pool.
//!
//! ```text
//! cargo run --release --example bench_forward -- --arch resnet50 --batch 1 --iters 10 --mode gradcam
//! ```

use std::time::Instant;

use clap::Parser;
use xai::models::candle_core::{Device, Tensor, Var};
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
    /// forward, gradcam or input-grad.
    #[arg(long, default_value = "forward")]
    mode: String,
}

/// One timed unit of work; returns a value that depends on all of it.
fn step(
    model: &xai::models::ResNet,
    x: &Tensor,
    mode: &str,
) -> Result<f32, Box<dyn std::error::Error>> {
    match mode {
        "forward" => Ok(model.forward(x)?.sum_all()?.to_scalar::<f32>()?),
        "gradcam" => {
            let a = model.forward_to(x, "layer4")?.detach();
            let var = Var::from_tensor(&a)?;
            let out = model.forward_from(var.as_tensor(), "layer4")?;
            let grads = out.narrow(1, 0, 1)?.sum_all()?.backward()?;
            let g = grads.get(var.as_tensor()).ok_or("no gradient")?;
            Ok(g.sum_all()?.to_scalar::<f32>()?)
        }
        "input-grad" => {
            let var = Var::from_tensor(x)?;
            let out = model.forward(var.as_tensor())?;
            let grads = out.narrow(1, 0, 1)?.sum_all()?.backward()?;
            let g = grads.get(var.as_tensor()).ok_or("no gradient")?;
            Ok(g.sum_all()?.to_scalar::<f32>()?)
        }
        other => Err(format!("unknown mode `{other}`").into()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dev = Device::Cpu;
    let model = xai::models::testing::random_resnet(ResNetConfig::from_arch(&args.arch)?, 0, &dev)?;
    let x = Tensor::randn(0f32, 1.0, (args.batch, 3, args.size, args.size), &dev)?;
    for _ in 0..args.warmup {
        step(&model, &x, &args.mode)?;
    }
    let mut ms = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let t = Instant::now();
        step(&model, &x, &args.mode)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "{}",
        serde_json::json!({"arch": args.arch, "batch": args.batch, "mode": args.mode, "ms": ms})
    );
    Ok(())
}
