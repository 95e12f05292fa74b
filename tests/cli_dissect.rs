//! End-to-end tests of `xai dissect` on a few test-world scenes, and bad input.
#![allow(clippy::unwrap_used)]

mod common;

use common::{fails_cleanly as fails, ok};

#[test]
fn labels_every_unit_of_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    ok(&[
        "dissect",
        "--probe-scenes",
        "12",
        "--layers",
        "layer4,fc",
        "--out",
        out.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(out.join("descriptions.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // testworld-objects: layer4 has 64 units, fc 8 classes.
    assert_eq!(rows.iter().filter(|r| r.starts_with("layer4,")).count(), 64);
    assert_eq!(rows.iter().filter(|r| r.starts_with("fc,")).count(), 8);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dissection.json")).unwrap())
            .unwrap();
    assert_eq!(json["probe_images"], 12);
    assert_eq!(json["concept_kinds"]["water"], "scene");
}

#[test]
fn the_iou_method_labels_detectors_of_spatial_layers_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    ok(&[
        "dissect",
        "--method",
        "iou",
        "--probe-scenes",
        "16",
        "--layers",
        "layer3,fc",
        "--out",
        out.to_str().unwrap(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dissection.json")).unwrap())
            .unwrap();
    assert_eq!(json["method"], "iou");
    assert_eq!(
        json["layers"],
        serde_json::json!(["layer3"]),
        "fc is skipped"
    );
    let labels = json["labels"].as_array().unwrap();
    assert!(labels.len() <= 32, "at most every layer3 unit");
    for l in labels {
        assert_eq!(l["layer"], "layer3");
        let iou = l["similarity"].as_f64().unwrap();
        assert!(
            (0.04..=1.0).contains(&iou),
            "only detectors are labelled: {l}"
        );
    }
    fails(
        &[
            "dissect",
            "--method",
            "iou",
            "--probe-scenes",
            "2",
            "--layers",
            "fc",
            "--out",
            out.to_str().unwrap(),
        ],
        &["convolutional layer"],
    );
    fails(
        &[
            "dissect",
            "--method",
            "bau",
            "--probe-scenes",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
        &["unknown --method", "clip or iou"],
    );
}

#[test]
fn bad_input_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    fails(
        &[
            "dissect",
            "--layers",
            "nope",
            "--probe-scenes",
            "2",
            "--out",
            o,
        ],
        &["unknown layer `nope`"],
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &["dissect", "--probe", empty.to_str().unwrap(), "--out", o],
        &["holds no images"],
    );
    fails(
        &[
            "dissect",
            "--concepts",
            "/nonexistent/c.txt",
            "--probe-scenes",
            "2",
            "--out",
            o,
        ],
        &["/nonexistent/c.txt"],
    );
    let probe = dir.path().join("p/images");
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(probe.join("bad.png"), b"not a png").unwrap();
    fails(
        &["dissect", "--probe", probe.to_str().unwrap(), "--out", o],
        &["bad"],
    );
    fails(
        &["dissect", "--clip", "RN50", "--out", o],
        &["CLIP support is not built in this version"],
    );
    fails(
        &["dissect", "--similarity", "nope", "--out", o],
        &["soft-wpmi"],
    );
}
