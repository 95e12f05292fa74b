//! End-to-end tests of `xai cam`: real runs on the committed parity fixtures (so they do not
//! depend on the test world's weights), and bad input that must end in a clear error.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

mod common;

use common::{fails_cleanly as fails, ok, root, xai};

const WEIGHTS: &str = "testdata/parity/resnet18_tiny.safetensors";
const CHELSEA: &str = "testdata/preprocess/chelsea_300x200.png";

/// The first image of the parity input as a (3, 64, 64) `.npy`, in `dir`.
fn parity_npy(dir: &Path, name: &str) -> PathBuf {
    let batch = ndarray::Array4::<f32>::read_npy(
        std::fs::File::open(root().join("testdata/parity/input_64.npy")).unwrap(),
    )
    .unwrap();
    let chw = batch.index_axis(ndarray::Axis(0), 0).to_owned();
    let path = dir.join(name);
    chw.write_npy(std::fs::File::create(&path).unwrap())
        .unwrap();
    path
}

fn read_map(path: &Path) -> Array2<f32> {
    Array2::<f32>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

#[test]
fn every_method_writes_its_three_files_and_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let input = parity_npy(dir.path(), "x.npy");
    let out = dir.path().join("out");
    let stdout = ok(&[
        "cam",
        "--method",
        "all",
        "--arch",
        "resnet18",
        "--weights",
        WEIGHTS,
        "--image",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    for m in [
        "gradcam",
        "gradcam++",
        "xgradcam",
        "hirescam",
        "layercam",
        "eigencam",
        "eigengradcam",
        "ablationcam",
        "scorecam",
    ] {
        let npy = out.join(format!("x.{m}.npy"));
        assert!(
            stdout.contains(npy.to_str().unwrap()),
            "{m} not reported: {stdout}"
        );
        let map = read_map(&npy);
        assert_eq!(map.dim(), (64, 64));
        assert!(
            map.iter().all(|v| (0.0..=1.0).contains(v)),
            "{m}: map outside [0, 1]"
        );
        let overlay = image::open(out.join(format!("x.{m}.png"))).unwrap();
        assert_eq!((overlay.width(), overlay.height()), (64, 64));
        assert!(overlay.as_rgb8().is_some());
        let gray = image::open(out.join(format!("x.{m}.gray.png"))).unwrap();
        assert!(gray.as_luma8().is_some());
        // The grey PNG is uint8(255·map).
        let g = gray.to_luma8();
        assert_eq!(g.get_pixel(10, 20)[0], (255.0 * map[[20, 10]]) as u8);
    }
    // The Grad-CAM map equals pytorch-grad-cam's on this image (fixture: uint16 of the map).
    let reference = ndarray::Array3::<u16>::read_npy(
        std::fs::File::open(root().join("testdata/parity/cam/resnet18_tiny.gradcam.npy")).unwrap(),
    )
    .unwrap();
    let ours = read_map(&out.join("x.gradcam.npy"));
    let worst = ours
        .iter()
        .zip(reference.index_axis(ndarray::Axis(0), 0).iter())
        .map(|(a, &b)| (a - b as f32 / 65535.0).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-3,
        "gradcam differs from the reference by {worst}"
    );
}

#[test]
fn folder_shards_class_and_layers() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("imgs");
    std::fs::create_dir(&images).unwrap();
    for name in ["a.png", "b.png", "c.png"] {
        std::fs::copy(root().join(CHELSEA), images.join(name)).unwrap();
    }
    let out = dir.path().join("out");
    let run = |shard: &str| {
        ok(&[
            "cam",
            "--method",
            "gradcam,layercam",
            "--arch",
            "resnet18",
            "--weights",
            WEIGHTS,
            "--image",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--shard",
            shard,
            "--class",
            "3",
            "--layer",
            "layer3",
            "--layer",
            "layer4",
        ])
    };
    let s0 = run("0/2");
    assert!(s0.contains("a.gradcam.npy") && s0.contains("c.layercam.npy"));
    assert!(!s0.contains("b.gradcam.npy"));
    let s1 = run("1/2");
    assert!(s1.contains("b.gradcam.npy") && !s1.contains("a.gradcam.npy"));
    for stem in ["a", "b", "c"] {
        for m in ["gradcam", "layercam"] {
            let map = read_map(&out.join(format!("{stem}.{m}.npy")));
            assert_eq!(map.dim(), (224, 224));
        }
    }
    // Same image, same settings: same map, whichever shard made it.
    assert_eq!(
        read_map(&out.join("a.gradcam.npy")),
        read_map(&out.join("b.gradcam.npy"))
    );
    // An empty shard is not an error.
    let s = xai(
        &[
            "cam",
            "--method",
            "gradcam",
            "--arch",
            "resnet18",
            "--weights",
            WEIGHTS,
            "--image",
            root().join(CHELSEA).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--shard",
            "1/2",
        ],
        &[],
    );
    assert!(s.status.success());
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let base = [
        "--arch",
        "resnet18",
        "--weights",
        WEIGHTS,
        "--image",
        CHELSEA,
        "--out",
        o,
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut v = vec!["cam"];
        v.extend_from_slice(extra);
        v.extend_from_slice(&base);
        v
    };
    fails(
        &with(&["--method", "gradkam"]),
        &[
            "unknown CAM method `gradkam`",
            "gradcam++",
            "scorecam",
            "all",
        ],
    );
    fails(
        &with(&["--method", "gradcam", "--shard", "2/2"]),
        &["--shard", "0 <= i < n"],
    );
    fails(
        &with(&["--method", "gradcam", "--shard", "x"]),
        &["--shard"],
    );
    fails(
        &with(&["--method", "gradcam", "--layer", "layer9"]),
        &["unknown layer `layer9`", "layer4.1"],
    );
    fails(
        &with(&["--method", "gradcam", "--layer", "fc"]),
        &["`fc`", "layer4"],
    );
    fails(
        &with(&["--method", "gradcam", "--class", "10"]),
        &["class index 10"],
    );
    fails(
        &with(&["--method", "scorecam", "--batch-size", "0"]),
        &["--batch-size"],
    );
    fails(
        &[
            "cam",
            "--method",
            "gradcam",
            "--arch",
            "resnet18",
            "--weights",
            WEIGHTS,
            "--image",
            "testdata/does-not-exist.png",
            "--out",
            o,
        ],
        &["does-not-exist.png"],
    );
    assert!(!out.join("chelsea_300x200.gradcam.npy").exists());
}
