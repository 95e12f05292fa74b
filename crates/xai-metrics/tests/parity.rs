//! Parity with pytorch-grad-cam's metrics on committed fixtures
//! (tools/parity/make_metric_fixtures.py): the seeded width-4 ResNet-18 and ResNet-50 of
//! testdata/parity, the two 64×64 inputs of input_64.npy, the reference's Grad-CAM map,
//! ClassifierOutputSoftmaxTarget(top-1), ROAD with noise 0.
//!
//! Tolerances: ROAD keep masks identical; imputed pixels within 1e-5 (f64 solves, CG vs a
//! direct solve, cast to f32); every score difference y' − y within 2e-6 absolute (the
//! probabilities are ≈ 0.1 and our forward matches torch to ≈ 1e-6 relative).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use ndarray::{Array1, Array3, Array4, ArrayD, Axis, Ix1, Ix3, Ix4};
use ndarray_npy::ReadNpyExt;
use xai_metrics::road::{keep_mask, NoisyLinearImputer, Road, RoadOrder, Unanchored};
use xai_metrics::ConfidenceScores;
use xai_models::{ClassProbability, ResNet, Target};

const PERCENTILES: [f32; 9] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0];
const SCORE_TOL: f32 = 2e-6;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/parity")
}

fn read<T: ndarray_npy::ReadableElement>(name: &str) -> ArrayD<T> {
    let path = testdata().join("metrics").join(name);
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ArrayD::<T>::read_npy(f).unwrap()
}

fn model(name: &str, arch: &str) -> ResNet {
    ResNet::load(
        testdata().join(format!("{name}.safetensors")),
        arch,
        &Device::Cpu,
    )
    .unwrap()
}

fn input() -> Array4<f32> {
    let f = std::fs::File::open(testdata().join("input_64.npy")).unwrap();
    Array4::<f32>::read_npy(f).unwrap()
}

fn tensor(x: &Array4<f32>) -> Tensor {
    let shape = x.shape().to_vec();
    Tensor::from_vec(x.iter().copied().collect::<Vec<_>>(), shape, &Device::Cpu).unwrap()
}

struct Case {
    model: ResNet,
    map: Array3<f32>,
    top1: Vec<usize>,
}

fn case(name: &str, arch: &str) -> Case {
    Case {
        model: model(name, arch),
        map: read::<f32>(&format!("{name}.map.npy"))
            .into_dimensionality::<Ix3>()
            .unwrap(),
        top1: read::<i64>(&format!("{name}.top1.npy"))
            .into_dimensionality::<Ix1>()
            .unwrap()
            .iter()
            .map(|&c| c as usize)
            .collect(),
    }
}

const CASES: [(&str, &str); 2] = [("resnet18_tiny", "resnet18"), ("resnet50_tiny", "resnet50")];

fn close(what: &str, ours: &[f32], theirs: &[f32], tol: f32) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= tol,
            "{what}[{i}]: ours {a}, reference {b}, tolerance {tol}"
        );
    }
}

#[test]
fn cam_mult_image_confidence_change_drop_and_increase() {
    let x = input();
    for (name, arch) in CASES {
        let c = case(name, arch);
        let expected = read::<f32>(&format!("{name}.cam_mult.npy"));
        let targets: Vec<ClassProbability> = c.top1.iter().map(|&k| ClassProbability(k)).collect();
        let targets: Vec<&dyn Target> = targets.iter().map(|t| t as &dyn Target).collect();
        let s = ConfidenceScores::compute(&c.model, &tensor(&x), c.map.view(), &targets).unwrap();
        let row = |i: usize| {
            expected
                .index_axis(Axis(0), i)
                .iter()
                .copied()
                .collect::<Vec<_>>()
        };
        close(&format!("{name} change"), &s.change(), &row(0), SCORE_TOL);
        close(
            &format!("{name} drop"),
            &s.drop_in_confidence(),
            &row(1),
            SCORE_TOL,
        );
        // An indicator: equal wherever the change is not within the tolerance of 0.
        for (i, (ours, theirs)) in s.increase_in_confidence().iter().zip(row(2)).enumerate() {
            if row(0)[i].abs() > SCORE_TOL {
                assert_eq!(*ours, theirs, "{name} increase[{i}]");
            }
        }
    }
}

fn unpack(bits: &Array1<u8>, n: usize) -> Vec<bool> {
    (0..n)
        .map(|i| bits[i / 8] >> (7 - i % 8) & 1 == 1)
        .collect()
}

#[test]
fn road_keep_masks_are_the_reference_masks() {
    for (name, arch) in CASES {
        let c = case(name, arch);
        let bits = read::<u8>(&format!("{name}.road_keep.npy"))
            .into_dimensionality::<Ix1>()
            .unwrap();
        let keep = unpack(&bits, 2 * 9 * 2 * 64 * 64);
        let mut k = 0;
        for order in [RoadOrder::MostRelevantFirst, RoadOrder::LeastRelevantFirst] {
            for p in PERCENTILES {
                for b in 0..2 {
                    let ours = keep_mask(c.map.index_axis(Axis(0), b), order, p).unwrap();
                    let theirs = &keep[k * 4096..(k + 1) * 4096];
                    let diff = ours.iter().zip(theirs).filter(|(a, b)| a != b).count();
                    assert_eq!(
                        diff, 0,
                        "{name} {order:?} p={p} image {b}: {diff} pixels differ"
                    );
                    k += 1;
                }
            }
        }
    }
}

#[test]
fn noiseless_imputation_matches_the_direct_solve() {
    let x = input();
    let c = case("resnet18_tiny", "resnet18");
    let expected = read::<f32>("resnet18_tiny.road_morf50.npy")
        .into_dimensionality::<Ix4>()
        .unwrap();
    for b in 0..2 {
        let keep = keep_mask(
            c.map.index_axis(Axis(0), b),
            RoadOrder::MostRelevantFirst,
            50.0,
        )
        .unwrap();
        let ours = NoisyLinearImputer::without_noise()
            .impute(x.index_axis(Axis(0), b), keep.view(), 0)
            .unwrap();
        let theirs = expected.index_axis(Axis(0), b);
        let worst = ours
            .iter()
            .zip(theirs.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1e-5, "image {b}: max |Δ| {worst}");
    }
}

#[test]
fn road_scores_and_combined_match() {
    let x = input();
    for (name, arch) in CASES {
        let c = case(name, arch);
        let road_ref = read::<f32>(&format!("{name}.road.npy"))
            .into_dimensionality::<Ix3>()
            .unwrap();
        let combined_ref = read::<f32>(&format!("{name}.road_combined.npy"));
        // The maps tie at 0 on whole quadrants, so MoRF at low percentiles keeps no pixel; the
        // reference's direct solve then returns zeros, which `Unanchored::Zero` reproduces.
        let road = Road {
            imputer: NoisyLinearImputer::without_noise().with_unanchored(Unanchored::Zero),
            ..Road::default()
        };
        for b in 0..2 {
            let image = tensor(&x).narrow(0, b, 1).unwrap();
            let target = ClassProbability(c.top1[b]);
            let r = road
                .combined(&c.model, &target, &image, c.map.index_axis(Axis(0), b))
                .unwrap();
            let col = |o: usize| {
                road_ref
                    .index_axis(Axis(0), o)
                    .index_axis(Axis(1), b)
                    .to_vec()
            };
            close(
                &format!("{name} MoRF image {b}"),
                &r.morf.change(),
                &col(0),
                SCORE_TOL,
            );
            close(
                &format!("{name} LeRF image {b}"),
                &r.lerf.change(),
                &col(1),
                SCORE_TOL,
            );
            close(
                &format!("{name} combined image {b}"),
                &[r.combined()],
                &[combined_ref[b]],
                SCORE_TOL,
            );
            // One order alone gives the same numbers as the combined run.
            let morf = road
                .scores(
                    &c.model,
                    &target,
                    &image,
                    c.map.index_axis(Axis(0), b),
                    RoadOrder::MostRelevantFirst,
                )
                .unwrap();
            assert_eq!(morf.change(), r.morf.change());
        }
        // By default the unanchored case is an error that says what to do.
        let strict = Road {
            imputer: NoisyLinearImputer::without_noise(),
            ..Road::default()
        };
        let image = tensor(&x).narrow(0, 0, 1).unwrap();
        if let Err(e) = strict.combined(
            &c.model,
            &ClassProbability(c.top1[0]),
            &image,
            c.map.index_axis(Axis(0), 0),
        ) {
            assert!(e.to_string().contains("choose a percentile"), "{e}");
        }
    }
}
