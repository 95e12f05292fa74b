//! Properties every segmenter keeps, on seeded synthetic images: the labels cover the image
//! and are numbered densely as scikit-image numbers them, runs are deterministic, and bad
//! parameters or pixels give errors, never panics.
#![allow(clippy::unwrap_used)]

use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use xai_lime::segment::{Felzenszwalb, Quickshift, SegmentMethod, Segmenter, Slic};
use xai_lime::Error;

/// A seeded image: smooth colour blobs plus a little noise, in [0, 1].
fn image(h: usize, w: usize, seed: u64) -> Array3<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Array3::from_shape_fn((h, w, 3), |(y, x, c)| {
        let base = ((y as f64 / 7.0 + c as f64).sin() * (x as f64 / 5.0).cos() + 1.0) / 2.0;
        (base + rng.random::<f64>() * 0.05).clamp(0.0, 1.0)
    })
}

fn all_methods() -> Vec<SegmentMethod> {
    vec![
        SegmentMethod::Quickshift(Quickshift::default()),
        SegmentMethod::Quickshift(Quickshift {
            kernel_size: 2.0,
            max_dist: 5.0,
            ratio: 0.5,
            sigma: 1.0,
            ..Quickshift::default()
        }),
        SegmentMethod::Slic(Slic::default()),
        SegmentMethod::Slic(Slic {
            n_segments: 20,
            start_label: 0,
            slic_zero: true,
            ..Slic::default()
        }),
        SegmentMethod::Felzenszwalb(Felzenszwalb::default()),
        SegmentMethod::Felzenszwalb(Felzenszwalb {
            scale: 100.0,
            sigma: 0.5,
            min_size: 50,
        }),
    ]
}

/// The labels are first..first+K−1, each used.
fn assert_dense(labels: &Array2<i32>, first: i32, what: &str) {
    let max = *labels.iter().max().unwrap();
    let min = *labels.iter().min().unwrap();
    assert_eq!(min, first, "{what}: smallest label");
    let mut seen = vec![false; (max - first + 1) as usize];
    for &l in labels {
        seen[(l - first) as usize] = true;
    }
    assert!(seen.iter().all(|&s| s), "{what}: labels are not contiguous");
}

#[test]
fn labels_cover_the_image_densely() {
    for (h, w) in [(40, 40), (23, 57), (1, 9), (9, 1), (1, 1)] {
        let img = image(h, w, 3);
        for m in all_methods() {
            let labels = m.segment(img.view()).unwrap();
            assert_eq!(labels.dim(), (h, w));
            let first = match &m {
                SegmentMethod::Slic(s) => s.start_label,
                _ => 0,
            };
            assert_dense(&labels, first, &format!("{m:?} on {h}×{w}"));
        }
    }
}

#[test]
fn quickshift_and_felzenszwalb_number_segments_by_raster_order() {
    let img = image(30, 30, 5);
    // felzenszwalb: by each segment's first pixel, so first appearances are increasing.
    let labels = Felzenszwalb::default().segment(img.view()).unwrap();
    let mut next = 0;
    for &l in &labels {
        assert!(l <= next, "label {l} appears before {next}");
        if l == next {
            next += 1;
        }
    }
    assert_eq!(labels[[0, 0]], 0);
}

#[test]
fn runs_are_deterministic_and_seeds_matter_only_for_ties() {
    let img = image(48, 40, 11);
    for m in all_methods() {
        let a = m.segment(img.view()).unwrap();
        let b = m.segment(img.view()).unwrap();
        assert_eq!(a, b, "{m:?}");
    }
    let q = Quickshift::default();
    let n1 = q.noise((4, 5));
    assert_eq!(n1, q.noise((4, 5)));
    let other = Quickshift { seed: 7, ..q }.noise((4, 5));
    assert_ne!(n1, other);
    assert!(n1.iter().all(|v| v.abs() < 1e-3));
}

#[test]
fn grey_and_many_channel_images_work_without_lab() {
    let img = image(20, 24, 2);
    let grey = Array3::from_shape_fn((20, 24, 1), |(y, x, _)| img[[y, x, 0]]);
    let five = Array3::from_shape_fn((20, 24, 5), |(y, x, c)| img[[y, x, c % 3]]);
    for im in [&grey, &five] {
        let qs = Quickshift {
            convert2lab: false,
            ..Quickshift::default()
        };
        assert_eq!(qs.segment(im.view()).unwrap().dim(), (20, 24));
        assert_eq!(Slic::default().segment(im.view()).unwrap().dim(), (20, 24));
        assert_eq!(
            Felzenszwalb::default().segment(im.view()).unwrap().dim(),
            (20, 24)
        );
    }
    // Lab needs RGB.
    let err = Quickshift::default().segment(grey.view()).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let err = Slic {
        convert2lab: Some(true),
        ..Slic::default()
    }
    .segment(grey.view())
    .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn bad_parameters_are_errors() {
    let img = image(10, 10, 1);
    let bad: Vec<(SegmentMethod, &str)> = vec![
        (
            SegmentMethod::Quickshift(Quickshift {
                kernel_size: 0.5,
                ..Quickshift::default()
            }),
            "kernel_size",
        ),
        (
            SegmentMethod::Quickshift(Quickshift {
                kernel_size: f64::NAN,
                ..Quickshift::default()
            }),
            "kernel_size",
        ),
        (
            SegmentMethod::Quickshift(Quickshift {
                max_dist: -1.0,
                ..Quickshift::default()
            }),
            "max_dist",
        ),
        (
            SegmentMethod::Quickshift(Quickshift {
                sigma: -1.0,
                ..Quickshift::default()
            }),
            "sigma",
        ),
        (
            SegmentMethod::Slic(Slic {
                n_segments: 0,
                ..Slic::default()
            }),
            "n_segments",
        ),
        (
            SegmentMethod::Slic(Slic {
                compactness: 0.0,
                ..Slic::default()
            }),
            "compactness",
        ),
        (
            SegmentMethod::Slic(Slic {
                start_label: 2,
                ..Slic::default()
            }),
            "start_label",
        ),
        (
            SegmentMethod::Slic(Slic {
                max_num_iter: 0,
                ..Slic::default()
            }),
            "max_num_iter",
        ),
        (
            SegmentMethod::Felzenszwalb(Felzenszwalb {
                scale: f64::INFINITY,
                ..Felzenszwalb::default()
            }),
            "scale",
        ),
        (
            SegmentMethod::Felzenszwalb(Felzenszwalb {
                sigma: f64::NAN,
                ..Felzenszwalb::default()
            }),
            "sigma",
        ),
    ];
    for (m, name) in bad {
        let err = m.segment(img.view()).unwrap_err();
        match &err {
            Error::Parameter { name: n, .. } => assert_eq!(*n, name, "{err}"),
            other => panic!("{m:?}: expected a parameter error, got {other}"),
        }
        assert!(m.validate().is_err());
    }
    assert!(SegmentMethod::with_defaults("watershed").is_err());
    assert!(SegmentMethod::with_defaults("SLIC").is_ok());
}

#[test]
fn bad_pixels_and_empty_images_are_errors() {
    let mut img = image(8, 8, 1);
    img[[3, 4, 1]] = f64::NAN;
    let mut inf = image(8, 8, 1);
    inf[[0, 0, 0]] = f64::INFINITY;
    let empty = Array3::<f64>::zeros((0, 5, 3));
    let no_channels = Array3::<f64>::zeros((4, 4, 0));
    for m in all_methods() {
        for im in [&img, &inf, &empty, &no_channels] {
            let err = m.segment(im.view()).unwrap_err();
            assert!(matches!(err, Error::Data(_)), "{m:?}: {err}");
        }
    }
    let msg = Slic::default().segment(img.view()).unwrap_err().to_string();
    assert!(msg.contains("row 3") && msg.contains("NaN"), "{msg}");
}

#[test]
fn quickshift_noise_must_fit_the_image() {
    let img = image(8, 8, 1);
    let q = Quickshift::default();
    let err = q
        .segment_with_noise(img.view(), Array2::zeros((8, 7)).view())
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let mut noise = Array2::zeros((8, 8));
    noise[[1, 1]] = f64::NAN;
    assert!(q.segment_with_noise(img.view(), noise.view()).is_err());
}

#[test]
fn parameters_round_trip_as_json() {
    for m in all_methods() {
        let json = serde_json::to_string(&m).unwrap();
        let back: SegmentMethod = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }
    let m: SegmentMethod = serde_json::from_str(r#"{"method": "slic", "n_segments": 7}"#).unwrap();
    assert_eq!(
        m,
        SegmentMethod::Slic(Slic {
            n_segments: 7,
            ..Slic::default()
        })
    );
    let unknown = serde_json::from_str::<SegmentMethod>(r#"{"method": "slic", "n_segmnts": 7}"#);
    assert!(unknown.is_err());
}

#[test]
fn a_flat_image_is_one_segment() {
    let img = Array3::from_elem((16, 16, 3), 0.5);
    assert!(Felzenszwalb::default()
        .segment(img.view())
        .unwrap()
        .iter()
        .all(|&l| l == 0));
    // quickshift: the noise picks the mode, but everything links into one tree per window.
    let q = Quickshift::default().segment(img.view()).unwrap();
    assert_dense(&q, 0, "flat quickshift");
}

#[test]
fn a_huge_kernel_does_not_exhaust_memory() {
    // Windows larger than the image are capped; a 1×1000 strip with a window of its whole
    // width would need a 16 GB ring of kernel terms, so the direct computation takes over.
    let huge = Quickshift {
        kernel_size: 1e12,
        ..Quickshift::default()
    };
    for (h, w) in [(20, 30), (1, 1000)] {
        let labels = huge.segment(image(h, w, 4).view()).unwrap();
        assert_eq!(labels.dim(), (h, w));
        assert_dense(&labels, 0, "huge kernel");
    }
}
