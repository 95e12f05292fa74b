//! Deletion / insertion (batched) and ROADCombined on a seeded random-weight ResNet.
//!
//! Default: ResNet-18 at width 16 on 64×64 inputs, 20 steps (seconds on 2 cores). The issue's
//! case, ResNet-50 at 224×224 with 100 steps, with `XAI_BENCH_FULL=1`.

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array2;
use xai_metrics::{deletion, insertion, DeletionConfig, Road};
use xai_models::{ClassProbability, ResNetConfig};

fn bench(c: &mut Criterion) {
    let full = std::env::var("XAI_BENCH_FULL").is_ok_and(|v| v == "1");
    let (config, size, steps) = if full {
        (ResNetConfig::resnet50(), 224, 100)
    } else {
        (
            ResNetConfig::resnet18().with_width(16).with_classes(10),
            64,
            20,
        )
    };
    let dev = Device::Cpu;
    let Ok(model) = xai_models::testing::random_resnet(config, 0, &dev) else {
        return;
    };
    let Ok(x) = Tensor::randn(0f32, 1.0, (3, size, size), &dev) else {
        return;
    };
    let map = Array2::from_shape_fn((size, size), |(r, c)| {
        ((r * 31 + c * 17) % 97) as f32 / 96.0
    });
    let Ok(cfg) = DeletionConfig::default().with_steps(steps, size, size) else {
        return;
    };
    let target = ClassProbability(0);
    let mut g = c.benchmark_group(format!("faithfulness_{size}px_{steps}steps"));
    g.sample_size(10);
    g.bench_function("deletion", |b| {
        b.iter(|| deletion(&model, &target, &x, map.view(), &cfg).map(|c| c.auc))
    });
    g.bench_function("insertion", |b| {
        b.iter(|| insertion(&model, &target, &x, map.view(), &cfg).map(|c| c.auc))
    });
    g.bench_function("road_combined", |b| {
        b.iter(|| {
            Road::default()
                .combined(&model, &target, &x, map.view())
                .map(|r| r.combined())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
