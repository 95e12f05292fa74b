//! End-to-end tests of `xai lime` and `xai lime-search` on the built-in test-world model, and
//! bad input that must end in a clear error.
#![allow(clippy::unwrap_used)]

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

mod common;

use common::{fails_cleanly as fails, ok};

const GOLDFISH: &str = "testdata/testworld/goldfish/images/scene_000000.png";

#[test]
fn lime_writes_every_output_of_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stdout = ok(&[
        "lime",
        "--image",
        GOLDFISH,
        "--num-samples",
        "120",
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(stdout.contains("goldfish"), "{stdout}");
    let stem = "scene_000000";
    for suffix in [
        "segments.npy",
        "lime.json",
        "lime_mask.npy",
        "lime_map.npy",
        "lime_overlay.png",
        "lime_boundaries.png",
        "lime_weights.png",
    ] {
        assert!(
            out.join(format!("{stem}.{suffix}")).is_file(),
            "missing {suffix}"
        );
    }
    let open = |s: &str| std::fs::File::open(out.join(format!("{stem}.{s}"))).unwrap();
    let segments = Array2::<i32>::read_npy(open("segments.npy")).unwrap();
    let mask = Array2::<i32>::read_npy(open("lime_mask.npy")).unwrap();
    assert_eq!(segments.dim(), mask.dim());
    assert!(mask.iter().all(|v| (-1..=1).contains(v)));
    assert!(mask.iter().any(|&v| v == 1));
    let json: serde_json::Value = serde_json::from_reader(open("lime.json")).unwrap();
    assert_eq!(json["num_samples"], 120);
    assert_eq!(json["labels"].as_array().unwrap().len(), 5);
    let first = &json["explanations"][0];
    assert_eq!(first["name"], "goldfish");
    let n = json["superpixels"].as_u64().unwrap() as usize;
    assert_eq!(first["weights"].as_array().unwrap().len(), n);

    // The same seed gives the same explanation; --positive-only keeps only 0/1.
    let again = dir.path().join("again");
    ok(&[
        "lime",
        "--image",
        GOLDFISH,
        "--num-samples",
        "120",
        "--seed",
        "5",
        "--positive-only",
        "--out",
        again.to_str().unwrap(),
        "--no-progress",
    ]);
    let json2: serde_json::Value = serde_json::from_reader(
        std::fs::File::open(again.join(format!("{stem}.lime.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(json["explanations"], json2["explanations"]);
    let mask2 = Array2::<i32>::read_npy(
        std::fs::File::open(again.join(format!("{stem}.lime_mask.npy"))).unwrap(),
    )
    .unwrap();
    assert!(mask2.iter().all(|v| (0..=1).contains(v)));
}

#[test]
fn lime_search_exports_json_pickle_and_trials() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("space.json");
    std::fs::write(
        &space,
        r#"{"segmentations": [{"method": "slic", "n_segments": 30}, {"method": "felzenszwalb", "scale": 100}],
            "num_samples": [60], "kernel_widths": [0.25], "hide_colors": ["mean"], "num_features": [2, 4]}"#,
    )
    .unwrap();
    let params = dir.path().join("params.json");
    let stdout = ok(&[
        "lime-search",
        "--scenes",
        "2",
        "--strategy",
        "grid",
        "--space",
        space.to_str().unwrap(),
        "--out",
        params.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(stdout.contains("best mean IoU"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_reader(std::fs::File::open(&params).unwrap()).unwrap();
    assert!(json["mean_iou"].as_f64().unwrap() >= 0.0);
    assert_eq!(json["trials"], 4);
    assert!(["slic", "felzenszwalb"].contains(&json["segmentation_fn"].as_str().unwrap()));
    let pkl = std::fs::read(dir.path().join("params.pkl")).unwrap();
    assert_eq!(&pkl[..2], &[0x80, 2]);
    assert_eq!(pkl.last(), Some(&b'.'));
    let csv = std::fs::read_to_string(dir.path().join("params.trials.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
}

#[test]
fn bad_input_ends_in_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    fails(
        &[
            "lime",
            "--image",
            GOLDFISH,
            "--hide-color",
            "purple",
            "--out",
            out,
        ],
        &["hide_color", "purple"],
    );
    fails(
        &[
            "lime",
            "--image",
            GOLDFISH,
            "--segmenter",
            "watershed",
            "--out",
            out,
        ],
        &["watershed"],
    );
    fails(
        &["lime", "--image", GOLDFISH, "--scale", "3", "--out", out],
        &["--scale", "quickshift"],
    );
    fails(
        &[
            "lime",
            "--image",
            GOLDFISH,
            "--num-samples",
            "1",
            "--out",
            out,
        ],
        &["num_samples"],
    );
    fails(
        &["lime", "--image", GOLDFISH, "--label", "99", "--out", out],
        &["99"],
    );
    fails(
        &[
            "lime",
            "--image",
            GOLDFISH,
            "--feature-selection",
            "magic",
            "--out",
            out,
        ],
        &["magic"],
    );
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    fails(
        &["lime", "--image", broken.to_str().unwrap(), "--out", out],
        &["broken.png"],
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &["lime", "--image", empty.to_str().unwrap(), "--out", out],
        &["empty"],
    );
    let params = dir.path().join("p.json");
    let p = params.to_str().unwrap();
    fails(
        &[
            "lime-search",
            "--image",
            GOLDFISH,
            "--masks",
            empty.to_str().unwrap(),
            "--out",
            p,
        ],
        &["no reference mask"],
    );
    fails(
        &["lime-search", "--strategy", "annealing", "--out", p],
        &["annealing"],
    );
}
