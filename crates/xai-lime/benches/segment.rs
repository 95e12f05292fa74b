//! Each segmenter at 224×224 on a seeded synthetic photo-like image (smooth colour fields plus
//! noise), with LIME's quickshift settings and scikit-image's defaults for the others.
//!
//! `cargo bench -p xai-lime --bench segment`

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use xai_lime::segment::{Felzenszwalb, Quickshift, SegmentMethod, Segmenter, Slic};

/// A seeded 224×224 RGB image in [0, 1]: smooth colour fields plus a little noise.
fn image() -> Array3<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    Array3::from_shape_fn((224, 224, 3), |(y, x, c)| {
        let (fy, fx) = (y as f64 / 224.0, x as f64 / 224.0);
        let base = match c {
            0 => (fy * 6.0).sin() * (fx * 4.0).cos(),
            1 => (fx * 9.0 + fy * 2.0).sin(),
            _ => ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt() * 3.0 - 1.0,
        };
        ((base + 1.0) / 2.0 + (rng.random::<f64>() - 0.5) * 0.05).clamp(0.0, 1.0)
    })
}

fn segment(c: &mut Criterion) {
    let img = image();
    let mut group = c.benchmark_group("segment_224");
    group.sample_size(10);
    for method in [
        SegmentMethod::Quickshift(Quickshift::default()),
        SegmentMethod::Slic(Slic::default()),
        SegmentMethod::Felzenszwalb(Felzenszwalb::default()),
    ] {
        group.bench_function(method.name(), |b| {
            b.iter(|| method.segment(img.view()).map(|l| l.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, segment);
criterion_main!(benches);
