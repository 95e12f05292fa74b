//! End-to-end tests of `xai compare`: the offline default on generated test-world scenes, the
//! `--from` path that reads a previous `xai cam` run, and bad input.
#![allow(clippy::unwrap_used)]

mod common;

use common::{fails_cleanly as fails, ok};

fn csv_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn default_run_writes_tables_metrics_and_a_self_contained_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let out_s = out.to_str().unwrap();
    let stdout = ok(&[
        "compare",
        "--methods",
        "gradcam,ablationcam,lime",
        "--scenes",
        "2",
        "--lime-samples",
        "60",
        "--steps",
        "8",
        "--out",
        out_s,
    ]);
    for f in [
        "pairwise_iou.csv",
        "pairwise_iou.md",
        "metrics.csv",
        "report.html",
    ] {
        assert!(stdout.contains(f), "{f} not reported: {stdout}");
    }
    // 2 images × 3 pairs, each IoU/Dice in [0, 1], Spearman in [-1, 1].
    let pairs = csv_rows(&out.join("pairwise_iou.csv"));
    assert_eq!(pairs.len(), 6);
    for row in &pairs {
        let (iou, dice, rho): (f32, f32, f32) = (
            row[3].parse().unwrap(),
            row[4].parse().unwrap(),
            row[5].parse().unwrap(),
        );
        assert!(
            (0.0..=1.0).contains(&iou) && (0.0..=1.0).contains(&dice),
            "{row:?}"
        );
        assert!(dice >= iou, "Dice is never below IoU: {row:?}");
        assert!((-1.0..=1.0).contains(&rho), "{row:?}");
    }
    // Grad-CAM and AblationCAM agree closely on the test world's model (GAP head).
    let gc_ab: Vec<f32> = pairs
        .iter()
        .filter(|r| r[1] == "gradcam" && r[2] == "ablationcam")
        .map(|r| r[3].parse().unwrap())
        .collect();
    assert!(gc_ab.iter().all(|&v| v > 0.5), "{gc_ab:?}");
    // Per image and method: AUCs in [0, 1] and localisation against the scenes' masks.
    let metrics = csv_rows(&out.join("metrics.csv"));
    assert_eq!(metrics.len(), 2 * 3);
    for row in &metrics {
        let num = |col: usize| -> f32 { row[col].parse().unwrap() };
        for col in [4, 5, 10, 11] {
            assert!((0.0..=1.0).contains(&num(col)), "column {col}: {row:?}");
        }
        assert!((-1.0..=1.0).contains(&num(6)), "ROADCombined: {row:?}");
        assert!(
            (0.0..=100.0).contains(&num(7)),
            "drop in confidence (%): {row:?}"
        );
        assert!(row[8] == "0" || row[8] == "1", "{row:?}");
        assert!(row[9] == "0.000000" || row[9] == "1.000000", "{row:?}");
        assert!(row[2] == "1" || row[2] == "2", "objects per scene: {row:?}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("data:image/png;base64,"),
        "pictures are embedded"
    );
    assert!(html.contains("<svg") && html.contains("IoU vs threshold"));
    assert!(
        !html.contains("src=\"/") && !html.contains("src=\"http") && !html.contains("href="),
        "opens offline: nothing is fetched"
    );
    let md = std::fs::read_to_string(out.join("pairwise_iou.md")).unwrap();
    assert!(
        md.contains("CAM regions: top:20"),
        "the binarisation is stated"
    );
}

#[test]
fn from_reads_the_maps_of_a_previous_cam_run() {
    let dir = tempfile::tempdir().unwrap();
    let scenes = "testdata/testworld/goldfish/images";
    let cams = dir.path().join("cams");
    ok(&[
        "cam",
        "--method",
        "gradcam,eigencam",
        "--image",
        scenes,
        "--out",
        cams.to_str().unwrap(),
        "--no-progress",
    ]);
    let out = dir.path().join("cmp");
    ok(&[
        "compare",
        "--image",
        scenes,
        "--methods",
        "gradcam,eigencam",
        "--from",
        cams.to_str().unwrap(),
        "--binarize",
        "otsu",
        "--steps",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    let pairs = csv_rows(&out.join("pairwise_iou.csv"));
    let images = std::fs::read_dir(scenes).unwrap().count();
    assert_eq!(pairs.len(), images);
    let text = std::fs::read_to_string(out.join("pairwise_iou.csv")).unwrap();
    assert!(text.starts_with("# CAM regions: otsu"), "{text}");
}

#[test]
fn bad_input_is_an_error_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let out_s = out.to_str().unwrap();
    fails(
        &["compare", "--methods", "gradcam", "--out", out_s],
        &["at least two methods"],
    );
    fails(
        &["compare", "--methods", "gradcam,nosuchcam", "--out", out_s],
        &["nosuchcam", "lime"],
    );
    fails(
        &[
            "compare",
            "--binarize",
            "top:120",
            "--scenes",
            "1",
            "--out",
            out_s,
        ],
        &["--binarize"],
    );
    fails(
        &[
            "compare",
            "--image",
            "testdata/testworld/goldfish/images",
            "--methods",
            "gradcam,lime",
            "--from",
            dir.path().to_str().unwrap(),
            "--out",
            out_s,
        ],
        &["--from expects the output folder"],
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &[
            "compare",
            "--image",
            empty.to_str().unwrap(),
            "--out",
            out_s,
        ],
        &["holds no images"],
    );
}

#[test]
fn the_sanity_check_reports_each_randomisation_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    ok(&[
        "compare",
        "--methods",
        "gradcam,eigencam",
        "--scenes",
        "1",
        "--steps",
        "4",
        "--no-road",
        "--sanity",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = csv_rows(&out.join("sanity.csv"));
    // 1 image × 2 methods × 6 cascading steps.
    assert_eq!(rows.len(), 12);
    let eigen_fc = rows
        .iter()
        .find(|r| r[1] == "eigencam" && r[2] == "fc")
        .unwrap();
    // EigenCAM never looks at the classifier: re-initialising fc leaves its map unchanged.
    assert!(
        (eigen_fc[3].parse::<f64>().unwrap() - 1.0).abs() < 1e-6,
        "{eigen_fc:?}"
    );
    let last = rows
        .iter()
        .find(|r| r[1] == "eigencam" && r[2].ends_with("conv1"))
        .unwrap();
    assert!(
        last[3].parse::<f64>().unwrap() < 0.9,
        "a fully random model changes the map: {last:?}"
    );
    let md = std::fs::read_to_string(out.join("sanity.md")).unwrap();
    assert!(md.contains("| eigencam |") && md.contains("fc+layer4"));
}
