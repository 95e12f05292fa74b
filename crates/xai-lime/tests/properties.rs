//! Properties of the explainer that hold whatever the model: seeded runs reproduce, fewer

//! samples are a prefix of more, a planted signal is found, and bad input is an error.

use image::{Rgb, RgbImage};
use ndarray::{Array2, ArrayView4};
use xai_lime::search::{mask_iou, search, SearchCase, SearchConfig, SearchSpace, Strategy};
use xai_lime::{
    Error, HideColor, LabelChoice, LimeConfig, LimeImageExplainer, MaskOptions, Quickshift,
    SegmentMethod, Slic,
};

/// A 16×16 picture in 16 square superpixels of 4×4 with distinct colours.
fn picture() -> (RgbImage, Array2<i32>) {
    let img = RgbImage::from_fn(16, 16, |x, y| {
        let k = (y / 4) * 4 + x / 4;
        Rgb([(k * 15) as u8, (255 - k * 13) as u8, ((k * 37) % 256) as u8])
    });
    let seg = Array2::from_shape_fn((16, 16), |(y, x)| ((y / 4) * 4 + x / 4) as i32);
    (img, seg)
}

/// Class 0 = the share of superpixels 5 and 10 left untouched (hidden with black, they go
/// dark); class 1 = its complement.
fn planted(batch: ArrayView4<'_, u8>) -> xai_lime::Result<Array2<f64>> {
    let (img, _) = picture();
    let b = batch.dim().0;
    Ok(Array2::from_shape_fn((b, 2), |(i, k)| {
        let mut kept = 0.0;
        for (sx, sy) in [(1u32, 1u32), (2, 2)] {
            let (x, y) = (sx * 4 + 1, sy * 4 + 1);
            if batch[[i, y as usize, x as usize, 0]] == img.get_pixel(x, y).0[0] {
                kept += 0.5;
            }
        }
        if k == 0 {
            kept
        } else {
            1.0 - kept
        }
    }))
}

fn config() -> LimeConfig {
    LimeConfig {
        num_samples: 400,
        hide_color: HideColor::Rgb([0, 0, 0]),
        labels: LabelChoice::Labels(vec![0]),
        seed: 3,
        ..LimeConfig::default()
    }
}

#[test]
fn the_planted_superpixels_are_found() {
    let (img, seg) = picture();
    let exp = LimeImageExplainer::new(config())
        .unwrap()
        .explain(&img, seg, &mut planted)
        .unwrap();
    let top: Vec<usize> = exp
        .local(0)
        .unwrap()
        .weights
        .iter()
        .take(2)
        .map(|w| w.0)
        .collect();
    let mut top = top;
    top.sort_unstable();
    assert_eq!(top, vec![5, 10]);
    assert!(exp.local(0).unwrap().score > 0.99);
    let mask = exp
        .mask(
            0,
            &MaskOptions {
                num_features: 2,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(mask.iter().filter(|&&v| v == 1).count(), 32);
}

#[test]
fn seeded_runs_reproduce_and_fewer_samples_are_a_prefix() {
    let (img, seg) = picture();
    let explainer = LimeImageExplainer::new(config()).unwrap();
    let a = explainer.explain(&img, seg.clone(), &mut planted).unwrap();
    let b = explainer.explain(&img, seg.clone(), &mut planted).unwrap();
    assert_eq!(a.local, b.local);
    let samples = explainer
        .sample_and_score(&img, seg.clone(), &mut planted, &mut |_| {})
        .unwrap();
    let prefix = explainer.fit(&samples, 150).unwrap();
    let direct = LimeImageExplainer::new(LimeConfig {
        num_samples: 150,
        ..config()
    })
    .unwrap()
    .explain(&img, seg, &mut planted)
    .unwrap();
    assert_eq!(prefix.local, direct.local);
    assert_eq!(prefix.data, direct.data);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let (img, seg) = picture();
    let explainer = LimeImageExplainer::new(config()).unwrap();
    // Superpixels of the wrong size.
    let small = Array2::<i32>::zeros((8, 8));
    assert!(matches!(
        explainer.explain(&img, small, &mut planted),
        Err(Error::Shape { .. })
    ));
    // A classifier that returns NaN, or the wrong number of rows.
    let mut nan = |b: ArrayView4<'_, u8>| Ok(Array2::from_elem((b.dim().0, 2), f64::NAN));
    assert!(matches!(
        explainer.explain(&img, seg.clone(), &mut nan),
        Err(Error::Classifier(_))
    ));
    let mut short = |_: ArrayView4<'_, u8>| Ok(Array2::<f64>::zeros((1, 2)));
    assert!(matches!(
        explainer.explain(&img, seg.clone(), &mut short),
        Err(Error::Classifier(_))
    ));
    // A label the classifier does not have.
    let bad_label = LimeImageExplainer::new(LimeConfig {
        labels: LabelChoice::Labels(vec![7]),
        ..config()
    })
    .unwrap();
    assert!(bad_label.explain(&img, seg.clone(), &mut planted).is_err());
    // Settings.
    for bad in [
        LimeConfig {
            num_samples: 1,
            ..config()
        },
        LimeConfig {
            kernel_width: 0.0,
            ..config()
        },
        LimeConfig {
            batch_size: 0,
            ..config()
        },
        LimeConfig {
            labels: LabelChoice::Top(0),
            ..config()
        },
    ] {
        assert!(matches!(
            LimeImageExplainer::new(bad),
            Err(Error::Parameter { .. })
        ));
    }
    // A mask for a label that was not explained, and contradictory mask flags.
    let exp = explainer.explain(&img, seg, &mut planted).unwrap();
    assert!(matches!(
        exp.mask(1, &MaskOptions::default()),
        Err(Error::UnknownLabel { .. })
    ));
    let both = MaskOptions {
        positive_only: true,
        negative_only: true,
        ..Default::default()
    };
    assert!(exp.mask(0, &both).is_err());
    assert!("purple".parse::<HideColor>().is_err());
    assert_eq!(
        "1,2,3".parse::<HideColor>().unwrap(),
        HideColor::Rgb([1, 2, 3])
    );
    assert_eq!("mean".parse::<HideColor>().unwrap(), HideColor::Mean);
}

#[test]
fn the_search_prefers_settings_that_isolate_the_planted_region() {
    let (img, _) = picture();
    let reference = Array2::from_shape_fn((16, 16), |(y, x)| {
        let (sx, sy) = (x / 4, y / 4);
        (sx, sy) == (1, 1) || (sx, sy) == (2, 2)
    });
    let cases = vec![SearchCase {
        name: "planted".into(),
        image: img,
        reference: reference.clone(),
        label: Some(0),
    }];
    let space = SearchSpace {
        segmentations: vec![
            SegmentMethod::Slic(Slic {
                n_segments: 16,
                compactness: 100.0,
                ..Slic::default()
            }),
            SegmentMethod::Quickshift(Quickshift {
                kernel_size: 1.0,
                ..Quickshift::default()
            }),
        ],
        num_samples: vec![100, 300],
        kernel_widths: vec![0.25],
        hide_colors: vec![HideColor::Rgb([0, 0, 0])],
        num_features: vec![1, 2, 6],
    };
    let config = SearchConfig {
        strategy: Strategy::Grid,
        seed: 0,
        batch_size: 64,
    };
    let mut groups = 0;
    let result = search(&cases, &mut planted, &space, &config, &mut |p| {
        groups = p.groups
    })
    .unwrap();
    assert_eq!(result.trials.len(), 2 * 2 * 3);
    assert_eq!(groups, 2);
    let best = result.best().unwrap();
    assert_eq!(best.params.num_features, 2, "{best:?}");
    // Neither segmentation cuts this 16×16 picture exactly on its 4×4 grid, so the best IoU
    // is below 1; it must still clearly beat the worst setting.
    assert!(best.mean_iou > 0.6, "{best:?}");
    let worst = result.trials.last().unwrap();
    assert!(worst.mean_iou < best.mean_iou - 0.2, "{worst:?}");
    for w in result.trials.windows(2) {
        assert!(w[0].mean_iou >= w[1].mean_iou);
    }
    assert_eq!(mask_iou(&reference, &reference).unwrap(), 1.0);
    let random = SearchConfig {
        strategy: Strategy::Random { trials: 5, seed: 1 },
        ..config
    };
    let r = search(&cases, &mut planted, &space, &random, &mut |_| {}).unwrap();
    assert_eq!(r.trials.len(), 5);
    assert!(search(&[], &mut planted, &space, &random, &mut |_| {}).is_err());
}
