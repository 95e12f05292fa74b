//! Perturbation throughput of the LIME explainer: perturbed images built per second, the
//! surrogate fits, and samples explained per second with a (small) model included.
//!
//! ```text
//! cargo bench -p xai-lime --bench lime
//! ```

#![allow(clippy::unwrap_used)] // seeded synthetic data; a failure is a bug in the bench

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use image::{Rgb, RgbImage};
use ndarray::{Array1, Array2, Array4};
use xai_lime::explain::{
    cosine_distances_to_first, explain_label, exponential_kernel, sample_matrix,
};
use xai_lime::{
    BackboneClassifier, FeatureSelection, HideColor, LabelChoice, LimeConfig, LimeImageExplainer,
    Superpixels,
};

/// A 224×224 picture in an 8×8 grid of 28×28 superpixels (64 features), seeded colours.
fn picture(side: u32) -> (RgbImage, Array2<i32>) {
    let cell = side / 8;
    let img = RgbImage::from_fn(side, side, |x, y| {
        let k = (y / cell) * 8 + x / cell;
        Rgb([
            (k * 37 % 256) as u8,
            (k * 91 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let seg = Array2::from_shape_fn((side as usize, side as usize), |(y, x)| {
        ((y as u32 / cell) * 8 + x as u32 / cell) as i32
    });
    (img, seg)
}

fn perturb(c: &mut Criterion) {
    let (img, seg) = picture(224);
    let sp = Superpixels::new(seg).unwrap();
    let hidden = sp.hidden_image(&img, HideColor::Mean);
    let (data, _) = sample_matrix(0, 32, sp.len());
    let mut batch = Array4::<u8>::zeros((32, 224, 224, 3));
    let mut group = c.benchmark_group("perturb");
    group.throughput(Throughput::Elements(32));
    group.bench_function("build 32 images 224x224, 64 superpixels", |b| {
        b.iter(|| {
            let flat = batch.as_slice_mut().unwrap();
            for (i, out) in flat.chunks_exact_mut(3 * 224 * 224).enumerate() {
                sp.perturb_into(img.as_raw(), hidden.as_raw(), data.row(i), out);
            }
        })
    });
    let model = xai_models::testing::random_resnet(
        xai_models::ResNetConfig::resnet18()
            .with_width(8)
            .with_classes(8),
        0,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let classifier = BackboneClassifier::new(&model);
    group.bench_function("convert 32 images to model input", |b| {
        b.iter(|| classifier.input(batch.view()).unwrap())
    });
    group.finish();
}

fn surrogate(c: &mut Criterion) {
    let (data, _) = sample_matrix(0, 1000, 64);
    let scores: Array1<f64> = data
        .outer_iter()
        .map(|r| r[3] * 0.5 + r[10] * 0.3 - r[20] * 0.1 + 0.05)
        .collect();
    let d = cosine_distances_to_first(data.view());
    let w = exponential_kernel(d.view(), 0.25);
    let mut group = c.benchmark_group("surrogate 1000 samples x 64 superpixels");
    for (mode, k) in [
        (FeatureSelection::None, 64),
        (FeatureSelection::HighestWeights, 10),
        (FeatureSelection::ForwardSelection, 5),
        (FeatureSelection::LassoPath, 10),
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(mode), &mode, |b, &mode| {
            b.iter(|| explain_label(data.view(), scores.view(), w.view(), 0, k, mode, 1.0).unwrap())
        });
    }
    group.finish();
}

fn with_model(c: &mut Criterion) {
    let (img, seg) = picture(64);
    let model = xai_models::testing::random_resnet(
        xai_models::ResNetConfig::resnet18()
            .with_width(8)
            .with_classes(8),
        0,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let explainer = LimeImageExplainer::new(LimeConfig {
        num_samples: 128,
        batch_size: 32,
        labels: LabelChoice::Top(1),
        ..LimeConfig::default()
    })
    .unwrap();
    let mut group = c.benchmark_group("explain");
    group.throughput(Throughput::Elements(128));
    group.sample_size(10);
    group.bench_function("128 samples, width-8 resnet18 at 64x64", |b| {
        b.iter(|| {
            let mut classifier = BackboneClassifier::new(&model);
            explainer
                .explain(&img, seg.clone(), &mut classifier)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, perturb, surrogate, with_model);
criterion_main!(benches);
