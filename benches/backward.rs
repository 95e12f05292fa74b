//! Gradient passes of the ResNet backbones (seeded random weights, 224×224, batch 1):
//! - `gradcam`: what Grad-CAM does: forward to `layer4` without gradients, then the gradient
//!   of one logit with respect to that activation (through avgpool and fc);
//! - `input_grad`: forward with gradients and back to the input through every convolution
//!   and the stem max pool (input-gradient methods and metrics).

use criterion::{criterion_group, criterion_main, Criterion};
use xai::models::candle_core::{Device, Tensor, Var};
use xai::models::{Backbone, ResNet, ResNetConfig};

fn gradcam(model: &ResNet, x: &Tensor) -> Tensor {
    let a = model.forward_to(x, "layer4").expect("forward_to").detach();
    let var = Var::from_tensor(&a).expect("var");
    let out = model
        .forward_from(var.as_tensor(), "layer4")
        .expect("forward_from");
    let grads = out
        .narrow(1, 0, 1)
        .and_then(|s| s.sum_all())
        .and_then(|s| s.backward())
        .expect("backward");
    grads.get(var.as_tensor()).expect("gradient").clone()
}

fn input_grad(model: &ResNet, x: &Tensor) -> Tensor {
    let var = Var::from_tensor(x).expect("var");
    let out = model.forward(var.as_tensor()).expect("forward");
    let grads = out
        .narrow(1, 0, 1)
        .and_then(|s| s.sum_all())
        .and_then(|s| s.backward())
        .expect("backward");
    grads.get(var.as_tensor()).expect("gradient").clone()
}

fn backward(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut group = c.benchmark_group("resnet_backward");
    group.sample_size(10);
    for (arch, cfg) in [
        ("resnet18", ResNetConfig::resnet18()),
        ("resnet50", ResNetConfig::resnet50()),
    ] {
        let model = match xai::models::testing::random_resnet(cfg, 0, &dev) {
            Ok(m) => m,
            Err(e) => panic!("cannot build {arch}: {e}"),
        };
        let x = Tensor::randn(0f32, 1.0, (1, 3, 224, 224), &dev).expect("input");
        group.bench_function(format!("{arch}/gradcam/batch1"), |b| {
            b.iter(|| gradcam(&model, &x))
        });
        group.bench_function(format!("{arch}/input_grad/batch1"), |b| {
            b.iter(|| input_grad(&model, &x))
        });
    }
    group.finish();
}

criterion_group!(benches, backward);
criterion_main!(benches);
