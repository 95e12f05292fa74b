//! Parity of the explainer with lime 0.2.0.1 on fixtures from
//! `tools/parity/make_lime_fixtures.py`: same image, same superpixels, the seed's sample
//! matrix drawn as NumPy draws it, the same perturbed images and the scores lime got; the
//! surrogates must agree to 1e-6 (relative to max(1, |value|)) and masks exactly.

#![allow(clippy::unwrap_used)] // fixtures are ours; a missing one should fail loudly

use std::path::PathBuf;

use ndarray::{Array1, Array2, Array3, ArrayView4};
use ndarray_npy::read_npy;
use serde_json::Value;
use xai_lime::{
    explain::sample_matrix, FeatureSelection, HideColor, LabelChoice, LimeConfig,
    LimeImageExplainer, MaskOptions, Superpixels,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/parity/lime_explain")
}

fn image() -> image::RgbImage {
    let a: Array3<u8> = read_npy(dir().join("image.npy")).unwrap();
    let (h, w, _) = a.dim();
    image::RgbImage::from_raw(w as u32, h as u32, a.iter().copied().collect()).unwrap()
}

fn segments() -> Array2<i32> {
    read_npy(dir().join("segments.npy")).unwrap()
}

fn results() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("results.json")).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[test]
fn the_sample_matrix_is_numpys() {
    let expected: Array2<i8> = read_npy(dir().join("data.npy")).unwrap();
    let r = results();
    let (n, p) = expected.dim();
    assert_eq!(p as u64, r["n_features"].as_u64().unwrap());
    let (data, _) = sample_matrix(r["seed"].as_u64().unwrap() as u32, n, p);
    assert_eq!(data, expected.mapv(f64::from));
}

#[test]
fn the_hidden_image_is_limes_mean_colour_image() {
    let expected: Array3<u8> = read_npy(dir().join("fudged.npy")).unwrap();
    let sp = Superpixels::new(segments()).unwrap();
    let hidden = sp.hidden_image(&image(), HideColor::Mean);
    assert_eq!(hidden.as_raw().as_slice(), expected.as_slice().unwrap());
}

/// Replays the scores lime got, checking that each perturbed image is the one lime built.
fn replay(mode: &str) -> impl FnMut(ArrayView4<'_, u8>) -> xai_lime::Result<Array2<f64>> {
    let preds: Array2<f64> = read_npy(dir().join(format!("preds_{mode}.npy"))).unwrap();
    let sums: Array1<i64> = read_npy(dir().join(format!("checksums_{mode}.npy"))).unwrap();
    let mut next = 0usize;
    move |batch: ArrayView4<'_, u8>| {
        let b = batch.dim().0;
        for (i, img) in batch.outer_iter().enumerate() {
            let sum: i64 = img.iter().map(|&v| i64::from(v)).sum();
            assert_eq!(
                sum,
                sums[next + i],
                "perturbed image {} differs from lime's",
                next + i
            );
        }
        let out = preds
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(next..next + b))
            .to_owned();
        next += b;
        Ok(out)
    }
}

fn config(entry: &Value, seed: u32, num_samples: usize) -> LimeConfig {
    LimeConfig {
        num_samples,
        batch_size: 32,
        hide_color: match entry["hide_color"].as_u64() {
            Some(v) => HideColor::Rgb([v as u8; 3]),
            None => HideColor::Mean,
        },
        labels: LabelChoice::Top(3),
        num_features: entry["num_features"].as_u64().unwrap() as usize,
        feature_selection: entry["feature_selection"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        seed,
        ..LimeConfig::default()
    }
}

#[test]
fn surrogates_match_lime_in_every_feature_selection_mode() {
    let r = results();
    let seed = r["seed"].as_u64().unwrap() as u32;
    let num_samples = r["num_samples"].as_u64().unwrap() as usize;
    let mut worst = 0f64;
    for (mode, entry) in r["modes"].as_object().unwrap() {
        let scores = if mode == "hide_black" {
            "hide_black"
        } else {
            "auto"
        };
        let mut classifier = replay(scores);
        let explainer = LimeImageExplainer::new(config(entry, seed, num_samples)).unwrap();
        let exp = explainer
            .explain(&image(), segments(), &mut classifier)
            .unwrap();
        let top: Vec<usize> = entry["top_labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(exp.labels, top, "{mode}: top labels");
        for (label, want) in entry["labels"].as_object().unwrap() {
            let label: usize = label.parse().unwrap();
            let got = exp.local(label).unwrap();
            let want_w = want["weights"].as_array().unwrap();
            let got_features: Vec<usize> = got.weights.iter().map(|w| w.0).collect();
            let want_features: Vec<usize> = want_w
                .iter()
                .map(|w| w[0].as_u64().unwrap() as usize)
                .collect();
            assert_eq!(
                got_features, want_features,
                "{mode} label {label}: features"
            );
            for ((_, g), w) in got.weights.iter().zip(want_w) {
                let w = w[1].as_f64().unwrap();
                worst = worst.max((g - w).abs() / w.abs().max(1.0));
                assert!(close(*g, w), "{mode} label {label}: weight {g} vs {w}");
            }
            for (name, g) in [
                ("intercept", got.intercept),
                ("score", got.score),
                ("local_pred", got.local_prediction),
            ] {
                let w = want[name].as_f64().unwrap();
                worst = worst.max((g - w).abs() / w.abs().max(1.0));
                assert!(close(g, w), "{mode} label {label}: {name} {g} vs {w}");
            }
            if mode == "auto" {
                assert_eq!(got.selection, FeatureSelection::HighestWeights);
            }
        }
    }
    eprintln!("worst relative difference to lime: {worst:.3e}");
}

#[test]
fn masks_match_get_image_and_mask() {
    let r = results();
    let entry = &r["modes"]["auto"];
    let seed = r["seed"].as_u64().unwrap() as u32;
    let num_samples = r["num_samples"].as_u64().unwrap() as usize;
    let mut classifier = replay("auto");
    let exp = LimeImageExplainer::new(config(entry, seed, num_samples))
        .unwrap()
        .explain(&image(), segments(), &mut classifier)
        .unwrap();
    let label = r["masks"]["label"].as_u64().unwrap() as usize;
    for (name, opts) in r["masks"]["cases"].as_object().unwrap() {
        let options = MaskOptions {
            positive_only: opts["positive_only"].as_bool().unwrap_or(true),
            negative_only: opts["negative_only"].as_bool().unwrap_or(false),
            hide_rest: opts["hide_rest"].as_bool().unwrap_or(false),
            num_features: opts["num_features"].as_u64().unwrap_or(5) as usize,
            min_weight: opts["min_weight"].as_f64().unwrap_or(0.0),
        };
        let (img, mask) = exp.image_and_mask(label, &options).unwrap();
        let want_mask: Array2<i32> = read_npy(dir().join(format!("mask_{name}.npy"))).unwrap();
        let want_img: Array3<u8> = read_npy(dir().join(format!("mask_{name}_image.npy"))).unwrap();
        assert_eq!(mask, want_mask, "{name}: mask");
        assert_eq!(
            img.as_raw().as_slice(),
            want_img.as_slice().unwrap(),
            "{name}: image"
        );
    }
}
