//! Each segmenter at 224×224 and 512×512 on a seeded synthetic photo-like image (smooth colour
//! fields plus noise), with LIME's quickshift settings and scikit-image's defaults for the
//! others.
//!
//! `cargo bench -p xai-lime --bench segment`

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use xai_lime::segment::{Felzenszwalb, Quickshift, SegmentMethod, Segmenter, Slic};

/// A seeded `size`×`size` RGB image in [0, 1]: smooth colour fields plus a little noise.
fn image(size: usize) -> Array3<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    let s = size as f64;
    Array3::from_shape_fn((size, size, 3), |(y, x, c)| {
        let (fy, fx) = (y as f64 / s, x as f64 / s);
        let base = match c {
            0 => (fy * 6.0).sin() * (fx * 4.0).cos(),
            1 => (fx * 9.0 + fy * 2.0).sin(),
            _ => ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt() * 3.0 - 1.0,
        };
        ((base + 1.0) / 2.0 + (rng.random::<f64>() - 0.5) * 0.05).clamp(0.0, 1.0)
    })
}

fn segment(c: &mut Criterion) {
    for size in [224, 512] {
        let img = image(size);
        let mut group = c.benchmark_group(format!("segment_{size}"));
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
}

criterion_group!(benches, segment);
criterion_main!(benches);
