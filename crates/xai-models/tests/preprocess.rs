//! The evaluation transform equals torchvision's (`Resize(256)`, `CenterCrop(224)` on PIL
//! images) pixel for pixel. Fixtures: `tools/parity/make_fixtures.py`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::Device;
use xai_models::preprocess::{load_image, load_input, resize_and_crop, to_tensor};
use xai_models::InputSpec;

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

#[test]
fn resize_and_crop_equal_torchvision() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(testdata("preprocess/manifest.json")).unwrap(),
    )
    .unwrap();
    let spec = InputSpec::imagenet();
    let cases = manifest.as_object().unwrap();
    assert!(cases.len() >= 4);
    for (name, case) in cases {
        let input = load_image(testdata(&format!(
            "preprocess/{}",
            case["input"].as_str().unwrap()
        )))
        .unwrap();
        let expected = load_image(testdata(&format!(
            "preprocess/{}",
            case["expected"].as_str().unwrap()
        )))
        .unwrap();
        let ours = resize_and_crop(&input, &spec);
        assert_eq!(ours.dimensions(), (224, 224), "{name}");
        let max_diff = ours
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .max()
            .unwrap();
        assert_eq!(max_diff, 0, "{name}: max difference {max_diff}/255");
    }
}

#[test]
fn normalisation_matches_torchvision_formula() {
    let img = image::RgbImage::from_pixel(2, 1, image::Rgb([255, 0, 128]));
    let t = to_tensor(&img, &InputSpec::imagenet(), &Device::Cpu).unwrap();
    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!((v[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
    assert!((v[2] - (0.0 - 0.456) / 0.224).abs() < 1e-6);
    assert!((v[4] - (128.0 / 255.0 - 0.406) / 0.225).abs() < 1e-6);
}

#[test]
fn odd_images_become_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let grey = dir.path().join("grey.png");
    image::GrayImage::from_pixel(40, 30, image::Luma([77]))
        .save(&grey)
        .unwrap();
    let rgba = dir.path().join("rgba.png");
    image::RgbaImage::from_pixel(30, 40, image::Rgba([1, 2, 3, 0]))
        .save(&rgba)
        .unwrap();
    let deep = dir.path().join("deep.png");
    image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_pixel(
        20,
        20,
        image::Rgb([65535, 0, 32768]),
    )
    .save(&deep)
    .unwrap();
    assert_eq!(load_image(&grey).unwrap().get_pixel(0, 0).0, [77, 77, 77]);
    assert_eq!(load_image(&rgba).unwrap().get_pixel(0, 0).0, [1, 2, 3]);
    assert_eq!(load_image(&deep).unwrap().get_pixel(0, 0).0, [255, 0, 128]);
    let t = load_input(&grey, &InputSpec::imagenet(), &Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[3, 224, 224]);
}

#[test]
fn bad_images_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    assert!(load_image(&empty)
        .unwrap_err()
        .to_string()
        .contains("empty"));
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let msg = load_image(&junk).unwrap_err().to_string();
    assert!(msg.contains("junk.jpg"), "{msg}");
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"hello").unwrap();
    assert!(load_image(&text).is_err());
    assert!(load_image(dir.path())
        .unwrap_err()
        .to_string()
        .contains("directory"));
    assert!(load_image(dir.path().join("missing.png")).is_err());
}

#[test]
fn npy_inputs_are_checked() {
    use ndarray_npy::WriteNpyExt;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.npy");
    ndarray::Array3::<f32>::zeros((3, 32, 48))
        .write_npy(std::fs::File::create(&good).unwrap())
        .unwrap();
    let t = load_input(&good, &InputSpec::imagenet(), &Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[3, 32, 48]);
    let wide = dir.path().join("wide.npy");
    ndarray::Array3::<f64>::zeros((1, 32, 48))
        .write_npy(std::fs::File::create(&wide).unwrap())
        .unwrap();
    let msg = load_input(&wide, &InputSpec::imagenet(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[1, 32, 48]") && msg.contains("(3, height, width)"),
        "{msg}"
    );
    let nan = dir.path().join("nan.npy");
    let mut a = ndarray::Array3::<f32>::zeros((3, 4, 4));
    a[[1, 2, 3]] = f32::NAN;
    a.write_npy(std::fs::File::create(&nan).unwrap()).unwrap();
    assert!(load_input(&nan, &InputSpec::imagenet(), &Device::Cpu)
        .unwrap_err()
        .to_string()
        .contains("non-finite"));
    let ints = dir.path().join("ints.npy");
    ndarray::Array3::<i32>::zeros((3, 4, 4))
        .write_npy(std::fs::File::create(&ints).unwrap())
        .unwrap();
    assert!(load_input(&ints, &InputSpec::imagenet(), &Device::Cpu)
        .unwrap_err()
        .to_string()
        .contains("float32"));
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 40×20 (red | blue), EXIF orientation 6: displayed 20×40, red on top.
    let img = load_image(testdata("preprocess/exif_orientation6.jpg")).unwrap();
    assert_eq!(img.dimensions(), (20, 40));
    let top = img.get_pixel(10, 5).0;
    let bottom = img.get_pixel(10, 34).0;
    assert!(top[0] > 200 && top[2] < 60, "top should be red: {top:?}");
    assert!(
        bottom[2] > 200 && bottom[0] < 60,
        "bottom should be blue: {bottom:?}"
    );
}
