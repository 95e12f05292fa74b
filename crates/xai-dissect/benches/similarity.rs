//! The similarity stage of CLIP-Dissect on seeded random inputs.
//!
//! Default size: 2,000 images × 2,000 concepts × 128 units (finishes in seconds on 2 cores).
//! The size, 10,000 × 20,000 × 512, with `XAI_BENCH_FULL=1`; or any size with
//! `XAI_BENCH_SIZE=N,C,U`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use xai_dissect::similarity::Similarity;

fn size() -> (usize, usize, usize) {
    if let Ok(s) = std::env::var("XAI_BENCH_SIZE") {
        let v: Vec<usize> = s.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        if let [n, c, u] = v[..] {
            return (n, c, u);
        }
    }
    if std::env::var("XAI_BENCH_FULL").is_ok_and(|v| v == "1") {
        (10_000, 20_000, 512)
    } else {
        (2_000, 2_000, 128)
    }
}

fn inputs(n: usize, c: usize, u: usize) -> (Array2<f32>, Array2<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    // Cosines of CLIP embeddings sit around 0.1–0.3.
    let s = Array2::from_shape_fn((n, c), |_| 0.2 + 0.05 * (rng.random::<f32>() - 0.5));
    // ReLU'd activations: about a third are exactly zero (ties).
    let a = Array2::from_shape_fn((n, u), |_| (rng.random::<f32>() - 0.3).max(0.0));
    (s, a)
}

fn bench(c: &mut Criterion) {
    let (n, k, u) = size();
    let (s, a) = inputs(n, k, u);
    let mut g = c.benchmark_group(format!("similarity_{n}x{k}x{u}"));
    g.sample_size(10);
    for name in ["soft-wpmi", "wpmi", "cos", "cos3", "rank-reorder"] {
        let Ok(sim) = Similarity::from_name(name) else {
            continue;
        };
        g.bench_with_input(BenchmarkId::from_parameter(name), &sim, |b, sim| {
            b.iter(|| sim.compute(s.view(), a.view()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
