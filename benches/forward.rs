//! Forward-pass throughput of the ResNet backbones (seeded random weights, 224×224).

use criterion::{criterion_group, criterion_main, Criterion};
use xai::models::candle_core::{Device, Tensor};
use xai::models::{Backbone, ResNetConfig};

fn forward(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut group = c.benchmark_group("resnet_forward");
    group.sample_size(10);
    for (arch, cfg) in [
        ("resnet18", ResNetConfig::resnet18()),
        ("resnet50", ResNetConfig::resnet50()),
    ] {
        let model = match xai::models::testing::random_resnet(cfg, 0, &dev) {
            Ok(m) => m,
            Err(e) => panic!("cannot build {arch}: {e}"),
        };
        for batch in [1usize, 8] {
            let x = Tensor::randn(0f32, 1.0, (batch, 3, 224, 224), &dev).expect("input");
            group.bench_function(format!("{arch}/batch{batch}"), |b| {
                b.iter(|| model.forward(&x).expect("forward"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
