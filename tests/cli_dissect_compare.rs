//! End-to-end tests of `xai dissect-compare`: two synthetic dissections written with
//! `report::write_outputs`, compared by the binary; and folders that are not dissections.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use xai::dissect::{report, Dissection, NeuronLabel};

mod common;

use common::{fails, ok};

/// Test-world concepts and their kinds (a few of each family).
const KINDS: [(&str, &str); 10] = [
    ("fin", "part"),
    ("wheel", "part"),
    ("roof", "part"),
    ("red", "colour"),
    ("light-blue", "colour"),
    ("stripes", "texture"),
    ("waves", "texture"),
    ("water", "scene"),
    ("sky", "scene"),
    ("grass", "scene"),
];

fn dissection(model: &str, layers: &[(&str, &[&str])]) -> Dissection {
    let labels = layers
        .iter()
        .flat_map(|(layer, concepts)| {
            concepts
                .iter()
                .enumerate()
                .map(move |(unit, c)| NeuronLabel {
                    layer: layer.to_string(),
                    unit,
                    concept: c.to_string(),
                    similarity: 0.2 + unit as f32 / 100.0,
                    top_k: vec![],
                    top_images: vec![],
                })
        })
        .collect();
    Dissection {
        model: model.into(),
        method: "clip".into(),
        similarity: "soft-wpmi".into(),
        layers: layers.iter().map(|(l, _)| l.to_string()).collect(),
        probe_images: 50,
        labels,
        concept_kinds: KINDS
            .iter()
            .map(|(c, k)| (c.to_string(), k.to_string()))
            .collect(),
    }
}

fn write_pair(dir: &Path) -> (String, String) {
    let a = dissection(
        "testworld-objects",
        &[
            ("layer3", &["fin", "red", "stripes", "fin"]),
            ("layer4", &["fin", "fin", "wheel", "roof", "water", "wheel"]),
        ],
    );
    let b = dissection(
        "testworld-scenes",
        &[
            ("layer3", &["water", "red", "waves", "stripes"]),
            ("layer4", &["water", "sky", "sky", "grass", "fin", "water"]),
        ],
    );
    let (pa, pb) = (dir.join("a"), dir.join("b"));
    report::write_outputs(&a, &pa).unwrap();
    report::write_outputs(&b, &pb).unwrap();
    (
        pa.to_str().unwrap().to_string(),
        pb.to_str().unwrap().to_string(),
    )
}

#[test]
fn compares_two_dissections_and_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = write_pair(dir.path());
    let out = dir.path().join("cmp");
    let stdout = ok(&["dissect-compare", &a, &b, "--out", out.to_str().unwrap()]);
    // layer3: {fin, red, stripes} vs {water, red, waves, stripes}: 2 shared of 5.
    assert!(
        stdout.contains("layer3: jaccard 0.400, top A fin (50%)"),
        "{stdout}"
    );
    // layer4: {fin, wheel, roof, water} vs {water, sky, grass, fin}: 2 shared of 6.
    assert!(
        stdout.contains("layer4: jaccard 0.333, top A fin (33%), top B sky (33%)"),
        "{stdout}"
    );
    for f in [
        "comparison.csv",
        "comparison_layers.csv",
        "comparison.json",
        "comparison.md",
        "comparison.html",
        "compare_top_concepts.svg",
        "compare_top_concepts.png",
        "compare_kinds.svg",
        "compare_kinds.png",
    ] {
        let len = std::fs::metadata(out.join(f)).unwrap().len();
        assert!(len > 100, "{f} is {len} bytes");
    }
    let png = image::open(out.join("compare_kinds.png"))
        .unwrap()
        .to_rgb8();
    assert!(png.pixels().filter(|p| p.0 != [255, 255, 255]).count() > 5000);

    let layers = std::fs::read_to_string(out.join("comparison_layers.csv")).unwrap();
    let rows: Vec<Vec<&str>> = layers.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0][..7],
        [
            "layer",
            "units_a",
            "units_b",
            "distinct_a",
            "distinct_b",
            "shared",
            "jaccard"
        ]
    );
    assert_eq!(
        rows[2][..7],
        ["layer4", "6", "6", "4", "4", "2", "0.333333"]
    );
    // object-like A: fin, fin, wheel, roof, wheel = 5 of 6; scene-like B: 5 of 6.
    assert_eq!(rows[2][7], "0.833333");
    assert_eq!(rows[2][10], "0.833333");

    let csv = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    assert!(
        csv.contains("\nlayer4,fin,part,2,0.333333,1,0.166667\n"),
        "{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(json["unique_to_a"], serde_json::json!(["roof", "wheel"]));
    assert_eq!(
        json["unique_to_b"],
        serde_json::json!(["grass", "sky", "waves"])
    );
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("Only in A: roof, wheel."), "{md}");
}

#[test]
fn a_folder_without_dissection_json_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = write_pair(dir.path());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = dir.path().join("cmp");
    fails(
        &[
            "dissect-compare",
            &a,
            empty.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
        &["is not a dissection output folder", "xai dissect"],
    );
    assert!(!out.exists());
    let missing = dir.path().join("missing");
    fails(
        &[
            "dissect-compare",
            missing.to_str().unwrap(),
            &a,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
        &["missing"],
    );
}

#[test]
fn json_that_is_not_a_dissection_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = write_pair(dir.path());
    // summary.json is valid JSON of another shape.
    let b_path = Path::new(&b);
    std::fs::copy(b_path.join("summary.json"), b_path.join("dissection.json")).unwrap();
    let out = dir.path().join("cmp");
    fails(
        &["dissect-compare", &a, &b, "--out", out.to_str().unwrap()],
        &[],
        &[
            "dissection.json",
            "is not a valid dissection",
            "invalid type",
        ],
    );
    std::fs::write(b_path.join("dissection.json"), "{ truncated").unwrap();
    fails(
        &["dissect-compare", &a, &b, "--out", out.to_str().unwrap()],
        &[],
        &["dissection.json", "line 1"],
    );
}
