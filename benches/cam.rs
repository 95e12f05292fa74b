//! Each CAM method on ResNet-18 and ResNet-50 at 224×224 (seeded random weights, one image),
//! plus AblationCAM and ScoreCAM throughput (ablations or masks per second).
//!
//! `cargo bench --bench cam` (set `XAI_BENCH_ARCHS=resnet18` to skip ResNet-50).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xai::cam::{Cam, Method, Targets};
use xai::models::candle_core::{Device, Tensor};
use xai::models::ResNetConfig;

fn cam(c: &mut Criterion) {
    let dev = Device::Cpu;
    let archs = std::env::var("XAI_BENCH_ARCHS").unwrap_or_else(|_| "resnet18,resnet50".into());
    for (arch, cfg) in [
        ("resnet18", ResNetConfig::resnet18()),
        ("resnet50", ResNetConfig::resnet50()),
    ] {
        if !archs.split(',').any(|a| a.trim() == arch) {
            continue;
        }
        let channels = cfg.feature_channels() as u64;
        let model = match xai::models::testing::random_resnet(cfg, 0, &dev) {
            Ok(m) => m,
            Err(e) => panic!("cannot build {arch}: {e}"),
        };
        let x = Tensor::randn(0f32, 1.0, (1, 3, 224, 224), &dev).expect("input");
        let mut group = c.benchmark_group(format!("cam_{arch}"));
        group.sample_size(10);
        for method in Method::ALL {
            let driver = Cam::new(&model, method.build(None).expect("method")).expect("driver");
            if matches!(method, Method::AblationCam | Method::ScoreCam) {
                // Elements = model evaluations (ablated activations or masked inputs).
                group.throughput(Throughput::Elements(channels));
            } else {
                group.throughput(Throughput::Elements(1));
            }
            group.bench_function(method.name(), |b| {
                b.iter(|| {
                    driver
                        .compute(&x, &Targets::TopClass)
                        .expect("cam")
                        .normalise()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, cam);
criterion_main!(benches);
