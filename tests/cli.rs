//! End-to-end tests of the `xai` binary: real runs on committed fixtures, and bad input that
//! must end in a clear error (exit code 1, a message naming the problem, never a panic).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use ndarray_npy::{ReadNpyExt, WriteNpyExt};

mod common;

use common::{fails, ok, root};

const CHELSEA: &str = "testdata/preprocess/chelsea_300x200.png";
const GOLDFISH: &str = "testdata/testworld/goldfish/images/scene_000000.png";

#[test]
fn classify_runs_offline_on_the_embedded_model() {
    let out = ok(&["classify", "--image", GOLDFISH, "--top", "3"]);
    assert!(out.contains("scene_000000.png"));
    let ranked: Vec<&str> = out.lines().filter(|l| l.contains('%')).collect();
    assert_eq!(ranked.len(), 3);
    assert!(ranked[0].trim_end().ends_with("goldfish"), "{out}");
    // Any photograph runs too (its answer is one of the test world's classes).
    let out = ok(&["classify", "--image", CHELSEA, "--top", "1"]);
    assert_eq!(out.lines().filter(|l| l.contains('%')).count(), 1);
}

#[test]
fn the_builtin_scenes_model_names_the_background() {
    let out = ok(&[
        "classify",
        "--arch",
        "testworld-scenes",
        "--image",
        GOLDFISH,
        "--top",
        "1",
    ]);
    assert!(
        out.lines()
            .any(|l| l.contains('%') && l.trim_end().ends_with("water")),
        "{out}"
    );
}

#[test]
fn testworld_generate_eval_and_train() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scenes");
    ok(&[
        "testworld",
        "generate",
        "--n",
        "3",
        "--seed",
        "7",
        "--size",
        "96",
        "--object",
        "car",
        "--out",
        out.to_str().unwrap(),
    ]);
    for f in [
        "labels.csv",
        "labels.json",
        "generator.json",
        "images/scene_000007.png",
        "masks/scene_000009.png",
        "instances/scene_000008/0_car.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("labels.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.split(',').nth(2) == Some("car")),
        "{csv}"
    );
    let img = image::open(out.join("images/scene_000007.png")).unwrap();
    assert_eq!((img.width(), img.height()), (96, 96));

    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "testworld",
        "eval",
        "--task",
        "objects",
        "--n",
        "16",
    ]))
    .unwrap();
    assert!(json["accuracy"].as_f64().unwrap() >= 0.8, "{json}");

    // Training runs end to end (a few steps at a tiny size; the real settings take minutes).
    let weights = dir.path().join("w.safetensors");
    let out = ok(&[
        "testworld",
        "train",
        "--task",
        "scenes",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--resolution",
        "32",
        "--width",
        "2",
        "--eval",
        "4",
        "--out",
        weights.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["heldout_scenes"], 4);
    assert!(weights.is_file());
    let out = ok(&[
        "classify",
        "--weights",
        weights.to_str().unwrap(),
        "--image",
        GOLDFISH,
        "--top",
        "1",
    ]);
    assert!(out.contains('%'));
}

#[test]
fn testworld_bad_parameters_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    fails(
        &["testworld", "generate", "--size", "0", "--out", out],
        &[],
        &["width", "0"],
    );
    fails(
        &["testworld", "generate", "--object", "unicorn", "--out", out],
        &[],
        &["unknown object kind `unicorn`", "goldfish"],
    );
    fails(
        &["testworld", "generate", "--scene", "lava", "--out", out],
        &[],
        &["unknown scene kind `lava`", "water"],
    );
    fails(
        &["testworld", "generate", "--n", "0", "--out", out],
        &[],
        &["--n"],
    );
    fails(
        &["testworld", "train", "--task", "faces", "--out", out],
        &[],
        &["unknown task `faces`", "objects"],
    );
    fails(
        &[
            "testworld",
            "train",
            "--task",
            "objects",
            "--steps",
            "0",
            "--out",
            out,
        ],
        &[],
        &["steps"],
    );
    fails(
        &["testworld", "benchmark", "--methods", "magic"],
        &[],
        &["unknown method `magic`", "center", "gradcam++"],
    );
}

#[test]
fn classify_json_and_saved_logits_match_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    // The first image of the parity input, as a preprocessed CHW .npy.
    let batch = ndarray::Array4::<f32>::read_npy(
        std::fs::File::open(root().join("testdata/parity/input_64.npy")).unwrap(),
    )
    .unwrap();
    let chw = batch.index_axis(ndarray::Axis(0), 0).to_owned();
    let input = dir.path().join("x.npy");
    chw.write_npy(std::fs::File::create(&input).unwrap())
        .unwrap();
    let logits_path = dir.path().join("logits.npy");
    let out = ok(&[
        "classify",
        "--arch",
        "resnet18",
        "--weights",
        "testdata/parity/resnet18_tiny.pth",
        "--image",
        input.to_str().unwrap(),
        "--json",
        "--save-logits",
        logits_path.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let top = json[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    let ours =
        ndarray::Array1::<f32>::read_npy(std::fs::File::open(&logits_path).unwrap()).unwrap();
    let reference = ndarray::Array2::<f32>::read_npy(
        std::fs::File::open(root().join("testdata/parity/resnet18_tiny.logits.npy")).unwrap(),
    )
    .unwrap();
    let reference = reference.row(0);
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (a, b) in ours.iter().zip(reference.iter()) {
        assert!((a - b).abs() <= 1e-4 * scale, "{a} vs {b}");
    }
    let best = reference
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(top[0]["index"].as_u64().unwrap() as usize, best);
}

#[test]
fn places365_checkpoint_with_label_file_and_detected_arch() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("categories_places365.txt");
    let text: String = (0..365)
        .map(|i| format!("/a/place_{i}/outdoor {i}\n"))
        .collect();
    std::fs::write(&labels, text).unwrap();
    let out = ok(&[
        "classify",
        "--weights",
        "testdata/parity/resnet18_tiny_places.pth.tar",
        "--labels",
        labels.to_str().unwrap(),
        "--image",
        "testdata/preprocess",
        "--top",
        "1",
    ]);
    assert_eq!(
        out.lines().filter(|l| l.contains("/outdoor")).count(),
        9,
        "{out}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty_img = dir.path().join("empty.jpg");
    std::fs::write(&empty_img, b"").unwrap();
    let junk_img = dir.path().join("junk.png");
    std::fs::write(&junk_img, b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let empty_dir = dir.path().join("nothing");
    std::fs::create_dir(&empty_dir).unwrap();
    let bad_npy = dir.path().join("bad.npy");
    ndarray::Array2::<f32>::zeros((4, 4))
        .write_npy(std::fs::File::create(&bad_npy).unwrap())
        .unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    fails(
        &["classify", "--image", "does/not/exist.png"],
        &[],
        &["does/not/exist.png"],
    );
    fails(
        &["classify", "--image", &s(&empty_img)],
        &[],
        &["empty.jpg", "empty"],
    );
    fails(&["classify", "--image", &s(&junk_img)], &[], &["junk.png"]);
    fails(
        &["classify", "--image", &s(&empty_dir)],
        &[],
        &["holds no images"],
    );
    fails(
        &["classify", "--image", &s(&bad_npy)],
        &[],
        &["bad.npy", "[4, 4]"],
    );
    fails(
        &[
            "classify",
            "--arch",
            "resnet50",
            "--weights",
            "testdata/parity/resnet18_tiny.safetensors",
            "--image",
            CHELSEA,
        ],
        &[],
        &["resnet50", "missing tensor", "looks like resnet18"],
    );
    fails(
        &["classify", "--arch", "vgg16", "--image", CHELSEA],
        &[],
        &["unknown architecture `vgg16`", "resnet50"],
    );
    // No weights anywhere: the error says where it looked and how to fix it.
    fails(
        &["classify", "--arch", "resnet50", "--image", CHELSEA],
        &[
            ("XAI_WEIGHTS_DIR", dir.path()),
            ("HF_HUB_CACHE", dir.path()),
        ],
        &[
            "no weights found for `resnet50`",
            "XAI_WEIGHTS_RESNET50",
            "--weights",
        ],
    );
    fails(
        &["classify", "--weights", &s(&junk_img), "--image", CHELSEA],
        &[],
        &["not a safetensors file"],
    );
    fails(
        &["classify", "--image", CHELSEA, "--top", "0"],
        &[],
        &["--top"],
    );
}

#[test]
fn preprocess_writes_the_model_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/x.npy");
    ok(&[
        "preprocess",
        "--image",
        "testdata/preprocess/coffee_420x280.png",
        "--out",
        out.to_str().unwrap(),
    ]);
    // The built-in model's input: 112×112.
    let a = ndarray::Array3::<f32>::read_npy(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(a.shape(), &[3, 112, 112]);
}

#[test]
fn help_documents_every_flag() {
    let out = ok(&["classify", "--help"]);
    for flag in [
        "--arch",
        "--weights",
        "--image",
        "--top",
        "--json",
        "--save-logits",
        "--labels",
        "--device",
    ] {
        assert!(out.contains(flag), "{flag} missing from help");
    }
}
