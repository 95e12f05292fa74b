//! End-to-end tests of `xai segment`: label maps equal to the committed scikit-image fixtures,
//! image loading (EXIF, grey), the boundaries PNG, and bad input that must end in a clear error.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3};
use ndarray_npy::ReadNpyExt;

mod common;

use common::{fails_cleanly as fails, ok, root};

const CHELSEA: &str = "testdata/preprocess/chelsea_300x200.png";
const LIME: &str = "testdata/parity/lime";

fn read_labels(path: &Path) -> Array2<i32> {
    Array2::<i32>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

/// A fixture's uint8 image, written as a PNG in `dir`.
fn fixture_png(dir: &Path, name: &str) -> PathBuf {
    let arr = Array3::<u8>::read_npy(
        std::fs::File::open(root().join(LIME).join(format!("{name}.image.npy"))).unwrap(),
    )
    .unwrap();
    let (h, w, _) = arr.dim();
    let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let p = |c| arr[[y as usize, x as usize, c]];
        image::Rgb([p(0), p(1), p(2)])
    });
    let path = dir.join(format!("{name}.png"));
    img.save(&path).unwrap();
    path
}

fn fixture_labels(name: &str) -> Array2<i32> {
    Array2::<i16>::read_npy(
        std::fs::File::open(root().join(LIME).join(format!("{name}.labels.npy"))).unwrap(),
    )
    .unwrap()
    .mapv(i32::from)
}

#[test]
fn slic_and_felzenszwalb_match_scikit_image() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["coffee", "chelsea"] {
        let png = fixture_png(dir.path(), name);
        let cases: [(&str, &[&str]); 4] = [
            ("slic_default", &["--method", "slic"]),
            (
                "slic_n50_c20",
                &[
                    "--method",
                    "slic",
                    "--n-segments",
                    "50",
                    "--compactness",
                    "20",
                ],
            ),
            ("felz_default", &["--method", "felzenszwalb"]),
            (
                "felz_other",
                &[
                    "--method",
                    "felzenszwalb",
                    "--scale",
                    "100",
                    "--sigma",
                    "0.5",
                    "--min-size",
                    "50",
                ],
            ),
        ];
        for (case, flags) in cases {
            let out = dir.path().join(format!("{name}.{case}.npy"));
            let mut args = vec!["segment", "--image", png.to_str().unwrap()];
            args.extend(["--out", out.to_str().unwrap()]);
            args.extend(flags);
            let stdout = ok(&args);
            let expected = fixture_labels(&format!("{name}.{case}"));
            let got = read_labels(&out);
            assert_eq!(got, expected, "{name} {case}");
            let n = {
                let mut v: Vec<i32> = expected.iter().copied().collect();
                v.sort_unstable();
                v.dedup();
                v.len()
            };
            assert!(stdout.starts_with(&format!("{n} segments")), "{stdout}");
        }
    }
}

#[test]
fn quickshift_writes_labels_and_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/labels.npy");
    let png = dir.path().join("bounds.png");
    let stdout = ok(&[
        "segment",
        "--method",
        "quickshift",
        "--image",
        CHELSEA,
        "--out",
        out.to_str().unwrap(),
        "--boundaries",
        png.to_str().unwrap(),
        "--kernel-size",
        "3",
        "--seed",
        "1",
    ]);
    assert!(stdout.contains("segments (quickshift)"), "{stdout}");
    let labels = read_labels(&out);
    assert_eq!(labels.dim(), (200, 300)); // its own size: no resize, no crop
    let k = *labels.iter().max().unwrap();
    assert!(k >= 1 && labels.iter().all(|&l| l >= 0));
    let marked = image::open(&png).unwrap().to_rgb8();
    assert_eq!(marked.dimensions(), (300, 200));
    assert!(marked.pixels().any(|p| p.0 == [255, 255, 0]));
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn exif_orientation_and_grey_images_are_loaded_as_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exif.npy");
    ok(&[
        "segment",
        "--method",
        "felzenszwalb",
        "--image",
        "testdata/preprocess/exif_orientation6.jpg",
        "--out",
        out.to_str().unwrap(),
    ]);
    let raw = image::ImageReader::open(root().join("testdata/preprocess/exif_orientation6.jpg"))
        .unwrap()
        .into_dimensions()
        .unwrap();
    // Orientation 6 rotates by 90°: the stored width becomes the height.
    assert_eq!(read_labels(&out).dim(), (raw.0 as usize, raw.1 as usize));

    let grey = dir.path().join("grey.png");
    image::GrayImage::from_fn(20, 12, |x, y| image::Luma([((x * 13 + y * 7) % 256) as u8]))
        .save(&grey)
        .unwrap();
    let out = dir.path().join("grey.npy");
    ok(&[
        "segment",
        "--method",
        "slic",
        "--n-segments",
        "6",
        "--start-label",
        "0",
        "--image",
        grey.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let labels = read_labels(&out);
    assert_eq!(labels.dim(), (12, 20));
    assert_eq!(*labels.iter().min().unwrap(), 0);
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.npy");
    let out = out.to_str().unwrap();
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really a png").unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"hello").unwrap();
    fn with<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["segment", "--out", out];
        a.extend(extra);
        a
    }
    fails(
        &with(out, &["--method", "slic", "--image", "missing.png"]),
        &["missing.png"],
    );
    fails(
        &with(
            out,
            &["--method", "slic", "--image", corrupt.to_str().unwrap()],
        ),
        &["corrupt.png"],
    );
    fails(
        &with(
            out,
            &["--method", "slic", "--image", text.to_str().unwrap()],
        ),
        &["notes.png"],
    );
    fails(
        &with(
            out,
            &["--method", "slic", "--image", CHELSEA, "--n-segments", "0"],
        ),
        &["n_segments"],
    );
    fails(
        &with(
            out,
            &[
                "--method",
                "quickshift",
                "--image",
                CHELSEA,
                "--kernel-size",
                "0.5",
            ],
        ),
        &["kernel_size", ">= 1"],
    );
    fails(
        &with(
            out,
            &[
                "--method",
                "quickshift",
                "--image",
                CHELSEA,
                "--ratio",
                "NaN",
            ],
        ),
        &["ratio"],
    );
    fails(
        &with(
            out,
            &["--method", "felzenszwalb", "--image", CHELSEA, "--sigma=-1"],
        ),
        &["sigma"],
    );
    fails(
        &with(
            out,
            &["--method", "slic", "--image", CHELSEA, "--start-label", "3"],
        ),
        &["start_label"],
    );
    fails(
        &with(
            out,
            &["--method", "slic", "--image", CHELSEA, "--kernel-size", "3"],
        ),
        &["--kernel-size does not apply to --method slic"],
    );
    fails(
        &with(out, &["--method", "watershed", "--image", CHELSEA]),
        &["watershed"],
    );
    assert!(!Path::new(out).exists());
}
