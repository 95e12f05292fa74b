//! Per-layer profile of the packed convolutions of a ResNet (seeded random weights): for
//! every distinct convolution shape at a 224×224 input, the time of one call on 1 and on all
//! threads (alternating, best of `--iters`), the GFLOP/s and the parallel efficiency, and
//! the share of the network's convolution time. With `--grad`, the input-gradient pass.
//!
//! With `--compare`, instead: the 3×3 stride-1 shapes through the direct product and through
//! Winograd F(2×2, 3×3), alternating, on 1 and on all threads.
//!
//! ```text
//! cargo run --release --example bench_layers -- --arch resnet50 --batch 1
//! cargo run --release --example bench_layers -- --arch resnet18 --batch 16 --compare
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Parser;
use xai::models::candle_core::{Device, Tensor, Var};
use xai::models::conv::{ConvAlgorithm, PackedConv};
use xai::models::{BlockKind, ResNetConfig};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "resnet50")]
    arch: String,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Time the input-gradient pass (forward + backward) instead of the forward.
    #[arg(long)]
    grad: bool,
    /// Compare the direct product with Winograd on the 3×3 stride-1 shapes.
    #[arg(long)]
    compare: bool,
}

/// (c_in, c_out, k, stride, input side) → how many times the network has it.
fn shapes(cfg: &ResNetConfig) -> BTreeMap<(usize, usize, usize, usize, usize), usize> {
    let mut m = BTreeMap::new();
    let mut add = |key| *m.entry(key).or_insert(0) += 1;
    add((3, 64, 7, 2, 224));
    let (mut in_ch, mut side) = (64, 56);
    for stage in 0..4 {
        let planes = 64 << stage;
        let out_ch = cfg.stage_channels(stage);
        for b in 0..cfg.blocks[stage] {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            match cfg.block {
                BlockKind::Basic => {
                    add((in_ch, planes, 3, stride, side));
                    add((planes, planes, 3, 1, side / stride));
                }
                BlockKind::Bottleneck => {
                    add((in_ch, planes, 1, 1, side));
                    add((planes, planes, 3, stride, side));
                    add((planes, out_ch, 1, 1, side / stride));
                }
            }
            if stride != 1 || in_ch != out_ch {
                add((in_ch, out_ch, 1, stride, side));
            }
            in_ch = out_ch;
            side /= stride;
        }
    }
    m
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let cfg = ResNetConfig::from_arch(&args.arch)?;
    let dev = Device::Cpu;
    let all = rayon::current_num_threads();
    let pools = [
        rayon::ThreadPoolBuilder::new().num_threads(1).build()?,
        rayon::ThreadPoolBuilder::new().num_threads(all).build()?,
    ];
    if args.compare {
        return compare(&args, &cfg, &pools);
    }
    println!(
        "{} batch {} {}, best of {} (1 thread / {all} threads)\n",
        args.arch,
        args.batch,
        if args.grad {
            "forward+input-grad"
        } else {
            "forward"
        },
        args.iters
    );
    println!("| c_in→c_out, k/s, side | count | 1 thread | {all} threads | GFLOP/s ({all}) | efficiency | share |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut total = 0.0;
    for (&(ci, co, k, s, side), &count) in &shapes(&cfg) {
        let w = Tensor::randn(0f32, 0.1, (co, ci, k, k), &dev)?;
        let b = Tensor::randn(0f32, 0.1, co, &dev)?;
        let conv = PackedConv::new(&w, Some(&b), s, k / 2)?;
        let x = Tensor::randn(0f32, 1.0, (args.batch, ci, side, side), &dev)?;
        let run = || -> xai::models::Result<()> {
            if args.grad {
                let v = Var::from_tensor(&x)?;
                let y = conv.forward(v.as_tensor(), true)?;
                y.sum_all()?.backward()?;
            } else {
                conv.forward(&x, true)?;
            }
            Ok(())
        };
        let mut best = [f64::INFINITY; 2];
        for _ in 0..args.iters {
            for (p, pool) in pools.iter().enumerate() {
                let t = Instant::now();
                pool.install(run)?;
                best[p] = best[p].min(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let side_o = (side + 2 * (k / 2) - k) / s + 1;
        let flops = 2.0 * (args.batch * co * side_o * side_o * ci * k * k) as f64;
        total += best[1] * count as f64;
        rows.push(((ci, co, k, s, side), count, best, flops));
    }
    for ((ci, co, k, s, side), count, best, flops) in rows {
        println!(
            "| {ci}→{co}, {k}×{k}/{s}, {side} | {count} | {:.2} ms | {:.2} ms | {:.1} | {:.0}% | {:.0}% |",
            best[0],
            best[1],
            flops * if args.grad { 2.0 } else { 1.0 } / best[1] / 1e6,
            100.0 * best[0] / (best[1] * all as f64),
            100.0 * best[1] * count as f64 / total
        );
    }
    println!("\nsum of convolutions ({all} threads): {total:.1} ms");
    Ok(())
}

/// Direct against Winograd per 3×3 stride-1 shape, forward with ReLU, best of `--iters`.
fn compare(
    args: &Args,
    cfg: &ResNetConfig,
    pools: &[rayon::ThreadPool; 2],
) -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let all = pools[1].current_num_threads();
    println!(
        "{} batch {} forward, direct vs Winograd, best of {}\n",
        args.arch, args.batch, args.iters
    );
    println!("| c_in→c_out, side | count | direct (1) | Winograd (1) | direct ({all}) | Winograd ({all}) | speed-up (1 / {all}) |");
    println!("|---|---|---|---|---|---|---|");
    let mut sums = [0.0f64; 4];
    for (&(ci, co, k, s, side), &count) in &shapes(cfg) {
        if k != 3 || s != 1 {
            continue;
        }
        let w = Tensor::randn(0f32, 0.1, (co, ci, 3, 3), &dev)?;
        let b = Tensor::randn(0f32, 0.1, co, &dev)?;
        let conv = PackedConv::new(&w, Some(&b), 1, 1)?;
        let convs = [
            conv.clone().with_algorithm(ConvAlgorithm::Direct),
            conv.with_algorithm(ConvAlgorithm::Winograd),
        ];
        let x = Tensor::randn(0f32, 1.0, (args.batch, ci, side, side), &dev)?;
        // best[pool][algorithm]
        let mut best = [[f64::INFINITY; 2]; 2];
        for _ in 0..args.iters {
            for (p, pool) in pools.iter().enumerate() {
                for (a, c) in convs.iter().enumerate() {
                    let t = Instant::now();
                    pool.install(|| c.forward(&x, true))?;
                    best[p][a] = best[p][a].min(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        for (i, v) in [best[0][0], best[0][1], best[1][0], best[1][1]]
            .iter()
            .enumerate()
        {
            sums[i] += v * count as f64;
        }
        println!(
            "| {ci}→{co}, {side} | {count} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2}× / {:.2}× |",
            best[0][0],
            best[0][1],
            best[1][0],
            best[1][1],
            best[0][0] / best[0][1],
            best[1][0] / best[1][1]
        );
    }
    println!(
        "\nsum over the network's 3×3 stride-1 convolutions: direct {:.1} / {:.1} ms, Winograd {:.1} / {:.1} ms (1 / {all} threads)",
        sums[0], sums[2], sums[1], sums[3]
    );
    Ok(())
}
