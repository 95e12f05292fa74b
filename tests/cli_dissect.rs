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
        &["no weights found for `RN50`", "RN50.pt", "--clip-weights"],
    );
    fails(
        &["dissect", "--clip", "RN51", "--out", o],
        &["RN51", "ViT-B/32"],
    );
    fails(
        &[
            "dissect",
            "--clip-weights",
            "/nonexistent/clip.safetensors",
            "--out",
            o,
        ],
        &["--clip-vocab", "bpe_simple_vocab_16e6.txt.gz"],
    );
    fails(
        &["dissect", "--method", "iou", "--clip", "RN50", "--out", o],
        &["leave out --clip"],
    );
    fails(
        &["dissect", "--similarity", "nope", "--out", o],
        &["soft-wpmi"],
    );
}

fn chunk_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    let entry = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("manifest.json").exists())
        .unwrap();
    let mut out: Vec<_> = std::fs::read_dir(&entry)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_killed_run_resumes_and_shards_merge_into_the_same_labels() {
    let dir = tempfile::tempdir().unwrap();
    // One full run: 14 scenes in chunks of 4 -> 4 chunks. It generates the probe scenes in
    // full/probe, which every later run reads, so all runs see the same image list.
    let full = dir.path().join("full");
    let probe = full.join("probe");
    let cache = dir.path().join("cache");
    let args = |out: &std::path::Path, extra: &[&str]| {
        let mut v: Vec<String> = [
            "dissect",
            "--probe-scenes",
            "14",
            "--layers",
            "layer4,fc",
            "--chunk-size",
            "4",
            "--cache",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |v: Vec<String>| {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        ok(&refs)
    };
    run(args(&full, &[]));
    let before = chunk_files(&cache);
    assert_eq!(before.len(), 4);
    let labels = std::fs::read_to_string(full.join("descriptions.csv")).unwrap();

    // "Kill" the run: one chunk lost. The rerun recomputes only that one.
    std::fs::remove_file(&before[2].0).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    run(args(
        &full,
        &["--probe", probe.join("images").to_str().unwrap()],
    ));
    let after = chunk_files(&cache);
    assert_eq!(after.len(), 4);
    for (i, ((p0, t0), (p1, t1))) in before.iter().zip(&after).enumerate() {
        assert_eq!(p0, p1);
        if i != 2 {
            assert_eq!(t0, t1, "chunk {i} was recomputed");
        }
    }
    assert_eq!(
        std::fs::read_to_string(full.join("descriptions.csv")).unwrap(),
        labels
    );

    // Shards: a fresh cache filled by 3 workers; labelling refuses it until all are done.
    let sharded = dir.path().join("sharded");
    let cache2 = dir.path().join("cache2");
    let shard_args = |extra: &[&str]| {
        let mut v = args(
            &sharded,
            &["--probe", probe.join("images").to_str().unwrap()],
        );
        let pos = v.iter().position(|s| s == "--cache").unwrap();
        v[pos + 1] = cache2.to_str().unwrap().to_string();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    run(shard_args(&["--shard", "0/3"]));
    run(shard_args(&["--shard", "1/3"]));
    let refs = shard_args(&[]);
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    fails(&refs, &["chunks missing", "2"]);
    run(shard_args(&["--shard", "2/3"]));
    run(shard_args(&[]));
    assert_eq!(
        std::fs::read_to_string(sharded.join("descriptions.csv")).unwrap(),
        labels,
        "sharded and single runs give the same labels"
    );
    // --from-cache: labelling only, from the entry folder.
    let entry = chunk_files(&cache2)[0].0.parent().unwrap().to_path_buf();
    let from = dir.path().join("from");
    ok(&[
        "dissect",
        "--layers",
        "layer4,fc",
        "--probe",
        probe.join("images").to_str().unwrap(),
        "--from-cache",
        entry.to_str().unwrap(),
        "--out",
        from.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(from.join("descriptions.csv")).unwrap(),
        labels
    );
}

/// A tiny random CLIP ViT (context 77, the 514-token vocabulary of a merges file without
/// merges) and its merges file.
fn tiny_clip(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use xai::models::testing::{random_clip_vit_tensors, ClipVitSizes};
    let sizes = ClipVitSizes {
        vocab: 514,
        context: 77,
        ..ClipVitSizes::tiny()
    };
    let weights = dir.join("clip_tiny.safetensors");
    let tensors = random_clip_vit_tensors(&sizes, 3).unwrap();
    xai::models::candle_core::safetensors::save(&tensors, &weights).unwrap();
    let merges = dir.join("merges.txt");
    std::fs::write(&merges, "header").unwrap();
    (weights, merges)
}

#[test]
fn clip_similarities_label_units_and_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (weights, merges) = tiny_clip(dir.path());
    let out = dir.path().join("out");
    let args = [
        "dissect",
        "--clip-weights",
        weights.to_str().unwrap(),
        "--clip-vocab",
        merges.to_str().unwrap(),
        "--probe",
        "testdata/testworld/sample/images",
        "--layers",
        "layer4,fc",
        "--chunk-size",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    // Two shard workers fill the activation chunks and the CLIP image chunks between them.
    for shard in ["0/2", "1/2"] {
        let mut worker = args.to_vec();
        worker.extend(["--shard", shard]);
        ok(&worker);
    }
    let listing = || -> Vec<(String, std::time::SystemTime)> {
        let mut v: Vec<_> = std::fs::read_dir(out.join("cache/clip"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, e.metadata().unwrap().modified().unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let cached = listing();
    assert!(
        cached.iter().any(|(n, _)| n.starts_with("text_")),
        "{cached:?}"
    );
    let images = std::fs::read_dir("testdata/testworld/sample/images")
        .unwrap()
        .count();
    assert_eq!(
        cached
            .iter()
            .filter(|(n, _)| n.starts_with("images_"))
            .count(),
        images.div_ceil(2),
        "one cache file per chunk of 2 images"
    );
    // Labelling reads every embedding back: nothing is rewritten, and a rerun labels the same.
    ok(&args);
    assert_eq!(listing(), cached, "nothing rewritten");
    let csv = std::fs::read_to_string(out.join("descriptions.csv")).unwrap();
    assert_eq!(
        csv.lines().skip(1).filter(|r| r.starts_with("fc,")).count(),
        8
    );
    ok(&args);
    assert_eq!(
        std::fs::read_to_string(out.join("descriptions.csv")).unwrap(),
        csv
    );
    // The tiny model is no RN50: naming the architecture checks it.
    let mut named = args.to_vec();
    named.splice(1..1, ["--clip", "RN50"]);
    fails(&named, &["RN50"]);
}

/// `(layer, unit, concept, score)` of every label of a run.
fn labels_of(out: &std::path::Path) -> Vec<(String, u64, String, f64)> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dissection.json")).unwrap())
            .unwrap();
    json["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["layer"].as_str().unwrap().to_string(),
                l["unit"].as_u64().unwrap(),
                l["concept"].as_str().unwrap().to_string(),
                l["similarity"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_broden_folder_dissects_like_the_test_world_scenes_it_was_exported_from() {
    let dir = tempfile::tempdir().unwrap();
    let native = dir.path().join("native");
    let run = |out: &std::path::Path, method: &str, probe: Option<&std::path::Path>| {
        let mut args = vec!["dissect", "--method", method, "--layers", "layer3", "--out"];
        args.push(out.to_str().unwrap());
        match probe {
            Some(p) => args.extend(["--probe", p.to_str().unwrap()]),
            None => args.extend(["--probe-scenes", "16"]),
        }
        ok(&args);
    };
    run(&native, "iou", None);
    let scenes = xai::dissect::ProbeSet::from_dir(&native.join("probe/images")).unwrap();
    let broden = dir.path().join("broden");
    xai::dissect::broden::export_testworld(&scenes.images, &broden).unwrap();
    let out = dir.path().join("out");
    run(&out, "iou", Some(&broden));
    for f in ["descriptions.csv", "dissection.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let labels = labels_of(&out);
    assert!(!labels.is_empty());
    assert_eq!(labels, labels_of(&native), "same labels and IoUs");

    // The clip method's offline scorer reads the same masks, in the same image order.
    let (native_clip, broden_clip) = (dir.path().join("nc"), dir.path().join("bc"));
    run(&native_clip, "clip", Some(&native.join("probe/images")));
    run(&broden_clip, "clip", Some(&broden));
    assert_eq!(labels_of(&broden_clip), labels_of(&native_clip));

    let concepts = dir.path().join("c.txt");
    std::fs::write(&concepts, "red\nwhelk\n").unwrap();
    fails(
        &[
            "dissect",
            "--method",
            "iou",
            "--probe",
            broden.to_str().unwrap(),
            "--concepts",
            concepts.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["whelk", "closest", "label.csv"],
    );
}
