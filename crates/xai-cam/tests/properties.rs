//! Properties of the driver and the methods, on seeded random ResNets and a toy backbone.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};
use xai_cam::{Cam, Method, Targets};
use xai_models::{Backbone, InputSpec, Labels, LayerInfo, ResNet, ResNetConfig};

fn resnet() -> ResNet {
    xai_models::testing::random_resnet(
        ResNetConfig::resnet18().with_width(4).with_classes(10),
        3,
        &Device::Cpu,
    )
    .unwrap()
}

/// A seeded pseudo-random input (a small LCG: candle's CPU rng cannot be seeded).
fn input(n: usize, seed: u64) -> Tensor {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data: Vec<f32> = (0..n * 3 * 48 * 48)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    Tensor::from_vec(data, (n, 3, 48, 48), &Device::Cpu).unwrap()
}

/// Counts how often each part of the wrapped model runs.
struct Counting<B> {
    inner: B,
    to: Cell<usize>,
    from: Cell<usize>,
    full: Cell<usize>,
}

impl<B: Backbone> Backbone for Counting<B> {
    fn layers(&self) -> &[LayerInfo] {
        self.inner.layers()
    }
    fn input_spec(&self) -> &InputSpec {
        self.inner.input_spec()
    }
    fn labels(&self) -> &Labels {
        self.inner.labels()
    }
    fn device(&self) -> &Device {
        self.inner.device()
    }
    fn forward_to(&self, x: &Tensor, layer: &str) -> xai_models::Result<Tensor> {
        self.to.set(self.to.get() + 1);
        self.inner.forward_to(x, layer)
    }
    fn forward_from(&self, a: &Tensor, layer: &str) -> xai_models::Result<Tensor> {
        self.from.set(self.from.get() + 1);
        self.inner.forward_from(a, layer)
    }
    fn forward(&self, x: &Tensor) -> xai_models::Result<Tensor> {
        self.full.set(self.full.get() + 1);
        self.inner.forward(x)
    }
    fn forward_to_many(&self, x: &Tensor, layers: &[&str]) -> xai_models::Result<Vec<Tensor>> {
        self.to.set(self.to.get() + 1);
        self.inner.forward_to_many(x, layers)
    }
}

#[test]
fn every_method_gives_finite_maps_in_unit_range_for_a_batch() {
    let model = resnet();
    let x = input(2, 1);
    for m in Method::ALL {
        let r = Cam::new(&model, m.build(None).unwrap())
            .unwrap()
            .compute(&x, &Targets::TopClass)
            .unwrap();
        let map = r.normalise();
        assert_eq!(map.dim(), (2, 48, 48), "{m}");
        assert!(
            map.iter().all(|v| (0.0..1.0).contains(v)),
            "{m}: outside [0, 1)"
        );
        assert_eq!(r.classes.as_ref().unwrap().len(), 2);
    }
}

#[test]
fn a_batch_equals_its_images_one_by_one() {
    let model = resnet();
    let x = input(2, 2);
    for m in [
        Method::GradCam,
        Method::AblationCam,
        Method::ScoreCam,
        Method::EigenCam,
    ] {
        let cam = Cam::new(&model, m.build(Some(7)).unwrap()).unwrap();
        let both = cam.compute(&x, &Targets::TopClass).unwrap();
        for b in 0..2 {
            let one = cam
                .compute(&x.narrow(0, b, 1).unwrap(), &Targets::TopClass)
                .unwrap();
            let a = both.layers[0]
                .raw
                .index_axis(ndarray::Axis(0), b)
                .to_owned();
            let c = one.layers[0].raw.index_axis(ndarray::Axis(0), 0).to_owned();
            let scale = a.iter().map(|v| v.abs()).fold(1e-12f32, f32::max);
            let d = (&a - &c).mapv(f32::abs).iter().fold(0f32, |x, &y| x.max(y));
            assert!(d <= 1e-4 * scale, "{m} image {b}: {d} of {scale}");
        }
    }
}

#[test]
fn ablationcam_runs_only_the_head_after_one_forward() {
    let model = Counting {
        inner: resnet(),
        to: Cell::new(0),
        from: Cell::new(0),
        full: Cell::new(0),
    };
    let x = input(2, 3);
    let channels = 32; // layer4 of a width-4 ResNet-18
    let r = Cam::new(
        &model,
        xai_cam::AblationCam::default().with_batch_size(16).unwrap(),
    )
    .unwrap()
    .compute(&x, &Targets::TopClass)
    .unwrap();
    assert_eq!(r.layers[0].raw.dim().0, 2);
    assert_eq!(model.to.get(), 1, "the body runs once");
    assert_eq!(model.full.get(), 0, "never a full forward");
    // One head pass for the output, then 2 images × 32 channels in batches of 16.
    assert_eq!(model.from.get(), 1 + 2 * channels / 16);
}

#[test]
fn scorecam_reports_progress_and_batches_its_masks() {
    let model = Counting {
        inner: resnet(),
        to: Cell::new(0),
        from: Cell::new(0),
        full: Cell::new(0),
    };
    let seen = std::cell::RefCell::new(Vec::new());
    let x = input(1, 4);
    Cam::new(
        &model,
        xai_cam::ScoreCam::default().with_batch_size(10).unwrap(),
    )
    .unwrap()
    .on_progress(|p| seen.borrow_mut().push((p.done, p.total)))
    .compute(&x, &Targets::Class(2))
    .unwrap();
    let seen = seen.into_inner();
    // Channels that are zero everywhere share one forward pass of the all-zero input; the
    // others go in batches of 10.
    let act = model.inner.forward_to(&x, "layer4").unwrap();
    let peaks: Vec<f32> = act
        .abs()
        .unwrap()
        .flatten_from(2)
        .unwrap()
        .max(2)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let dead = peaks.iter().filter(|&&p| p == 0.0).count();
    let live_batches = (32 - dead).div_ceil(10);
    assert_eq!(seen.first(), Some(&(dead, 32)));
    assert_eq!(seen.last(), Some(&(32, 32)));
    assert_eq!(seen.len(), 1 + live_batches);
    assert_eq!(model.full.get(), usize::from(dead > 0) + live_batches);
}

/// A toy backbone whose only layer has a constant activation (zero weights): every map must
/// be all zeros, never NaN (the reference's ScoreCAM used to give NaN here).
struct Flat {
    conv: Conv2d,
    fc: Linear,
    layers: Vec<LayerInfo>,
    spec: InputSpec,
    labels: Labels,
}

impl Backbone for Flat {
    fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }
    fn input_spec(&self) -> &InputSpec {
        &self.spec
    }
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn device(&self) -> &Device {
        &Device::Cpu
    }
    fn forward_to(&self, x: &Tensor, layer: &str) -> xai_models::Result<Tensor> {
        let f = self.conv.forward(x)?.relu()?;
        match self.layer_index(layer)? {
            0 => Ok(f),
            _ => self.forward_from(&f, "conv"),
        }
    }
    fn forward_from(&self, a: &Tensor, layer: &str) -> xai_models::Result<Tensor> {
        match self.layer_index(layer)? {
            0 => Ok(self.fc.forward(&a.mean((2, 3))?)?),
            _ => Ok(a.clone()),
        }
    }
}

#[test]
fn a_constant_activation_gives_a_zero_map_not_nan() {
    let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
    let conv = candle_nn::conv2d(
        3,
        6,
        3,
        Conv2dConfig {
            padding: 1,
            ..Default::default()
        },
        vb.pp("conv"),
    )
    .unwrap();
    let fc = candle_nn::linear(6, 4, vb.pp("fc")).unwrap();
    let model = Flat {
        conv,
        fc,
        layers: vec![LayerInfo::spatial("conv", 6), LayerInfo::vector("fc", 4)],
        spec: InputSpec::imagenet_at(16),
        labels: Labels::numbered(4),
    };
    let x = input(1, 5)
        .narrow(2, 0, 16)
        .unwrap()
        .narrow(3, 0, 16)
        .unwrap();
    for m in Method::ALL {
        let r = Cam::new(&model, m.build(None).unwrap())
            .unwrap()
            .with_layers(&["conv"])
            .unwrap()
            .with_eigen_smooth(true)
            .compute(&x, &Targets::TopClass)
            .unwrap();
        let map = r.normalise();
        assert!(map.iter().all(|&v| v == 0.0), "{m}: {map:?}");
    }
}

#[test]
fn layers_are_validated_with_the_valid_names() {
    let model = resnet();
    let err = Cam::new(&model, xai_cam::GradCam)
        .unwrap()
        .with_layers(&["layer5"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer5") && err.contains("layer4.1") && err.contains("avgpool"));
    let err = Cam::new(&model, xai_cam::GradCam)
        .unwrap()
        .with_layers(&["avgpool"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no spatial layout") && err.contains("layer3"));
    let err = Cam::new(&model, xai_cam::GradCam)
        .unwrap()
        .compute(
            &input(2, 1),
            &Targets::PerImage(vec![&xai_models::ClassLogit(1)]),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 targets given for a batch of 2"), "{err}");
}

#[test]
fn aug_smooth_and_eigen_smooth_give_unit_range_maps() {
    let model = resnet();
    let x = input(1, 6);
    let cam = Cam::new(&model, xai_cam::GradCamPlusPlus)
        .unwrap()
        .with_layers(&["layer3"])
        .unwrap();
    let smooth = cam.compute_aug_smooth(&x, &Targets::TopClass).unwrap();
    assert_eq!(smooth.dim(), (1, 48, 48));
    assert!(smooth.iter().all(|v| (0.0..1.0).contains(v)));
    let eig = cam
        .with_eigen_smooth(true)
        .compute(&x, &Targets::TopClass)
        .unwrap();
    assert!(eig.normalise().iter().all(|v| (0.0..1.0).contains(v)));
}
