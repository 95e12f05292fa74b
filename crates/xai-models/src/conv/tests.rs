//! The packed convolution and the pooling op against candle's own ops, values and gradients.
#![allow(clippy::unwrap_used)]

use super::*;
use candle_core::{Device, Var};

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn scale(a: &Tensor) -> f32 {
    a.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .max(1.0)
}

/// (batch, c_in, h, w, c_out, k, stride, padding)
type ConvShape = (usize, usize, usize, usize, usize, usize, usize, usize);

const SHAPES: [ConvShape; 9] = [
    (1, 3, 23, 21, 8, 7, 2, 3),  // stem-like 7×7 / 2
    (2, 16, 9, 9, 8, 1, 1, 0),   // 1×1 stride 1: a plain product
    (3, 8, 10, 10, 12, 1, 2, 0), // 1×1 stride 2 (downsample)
    (2, 8, 10, 9, 16, 3, 1, 1),  // 3×3
    (5, 6, 13, 13, 7, 3, 2, 1),  // 3×3 / 2, odd batch
    (4, 6, 8, 8, 5, 3, 2, 1),    // split over the batch
    (1, 4, 5, 5, 3, 3, 1, 0),    // no padding
    (1, 2, 3, 4, 3, 3, 1, 2),    // padding larger than needed
    (2, 5, 7, 7, 4, 5, 3, 2),    // 5×5 / 3
];

struct Case {
    x: Tensor,
    w: Tensor,
    b: Tensor,
    stride: usize,
    padding: usize,
    conv: PackedConv,
}

fn case(i: usize) -> Case {
    let (n, ci, h, w, co, k, stride, padding) = SHAPES[i];
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (n, ci, h, w), &dev).unwrap();
    let wt = Tensor::randn(0f32, 0.5, (co, ci, k, k), &dev).unwrap();
    let b = Tensor::randn(0f32, 0.5, co, &dev).unwrap();
    let conv = PackedConv::new(&wt, Some(&b), stride, padding).unwrap();
    Case {
        x,
        w: wt,
        b,
        stride,
        padding,
        conv,
    }
}

impl Case {
    /// candle's conv2d + bias.
    fn reference(&self, x: &Tensor) -> Tensor {
        let co = self.w.dim(0).unwrap();
        x.conv2d(&self.w, self.padding, self.stride, 1, 1)
            .unwrap()
            .broadcast_add(&self.b.reshape((1, co, 1, 1)).unwrap())
            .unwrap()
    }
}

#[test]
fn forward_matches_candle_conv2d() {
    for (i, shape) in SHAPES.iter().enumerate() {
        let c = case(i);
        let want = c.reference(&c.x);
        let got = c.conv.forward(&c.x, false).unwrap();
        let d = max_abs(&got, &want);
        assert!(d <= 1e-5 * scale(&want), "shape {:?}: {d}", shape);
        let got = c.conv.forward(&c.x, true).unwrap();
        let d = max_abs(&got, &want.relu().unwrap());
        assert!(d <= 1e-5 * scale(&want), "relu, shape {:?}: {d}", shape);
        let r = Tensor::randn(0f32, 1.0, want.dims(), &Device::Cpu).unwrap();
        let got = c.conv.forward_add(&c.x, &r, true).unwrap();
        let d = max_abs(&got, &(&want + &r).unwrap().relu().unwrap());
        assert!(
            d <= 1e-5 * scale(&want),
            "residual, shape {:?}: {d}",
            SHAPES[i]
        );
    }
}

#[test]
fn non_contiguous_input_is_accepted() {
    let c = case(3);
    // The same values through a transposed-and-back view.
    let xt = c.x.transpose(2, 3).unwrap().contiguous().unwrap();
    let x = xt.transpose(2, 3).unwrap();
    assert!(!x.is_contiguous());
    let d = max_abs(&c.conv.forward(&x, false).unwrap(), &c.reference(&c.x));
    assert!(d < 1e-4);
}

#[test]
fn input_gradient_matches_candle_backward() {
    for (i, shape) in SHAPES.iter().enumerate() {
        for (relu, residual) in [(false, false), (true, false), (true, true)] {
            let c = case(i);
            let out_dims = c.reference(&c.x).dims().to_vec();
            let dev = Device::Cpu;
            // A random linear functional of the output, so every output element matters.
            let probe = Tensor::randn(0f32, 1.0, out_dims.as_slice(), &dev).unwrap();
            let r0 = Tensor::randn(0f32, 1.0, out_dims.as_slice(), &dev).unwrap();

            let x = Var::from_tensor(&c.x).unwrap();
            let r = Var::from_tensor(&r0).unwrap();
            let y = match residual {
                true => c
                    .conv
                    .forward_add(x.as_tensor(), r.as_tensor(), relu)
                    .unwrap(),
                false => c.conv.forward(x.as_tensor(), relu).unwrap(),
            };
            let grads = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let gx = grads.get(x.as_tensor()).unwrap().clone();

            let xr = Var::from_tensor(&c.x).unwrap();
            let rr = Var::from_tensor(&r0).unwrap();
            let mut yr = c.reference(xr.as_tensor());
            if residual {
                yr = (yr + rr.as_tensor()).unwrap();
            }
            if relu {
                yr = yr.relu().unwrap();
            }
            let grads_r = (yr * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gx_r = grads_r.get(xr.as_tensor()).unwrap();
            let d = max_abs(&gx, gx_r);
            assert!(
                d <= 1e-5 * scale(gx_r),
                "shape {:?} relu {relu} residual {residual}: {d}",
                shape
            );
            if residual {
                let d = max_abs(
                    grads.get(r.as_tensor()).unwrap(),
                    grads_r.get(rr.as_tensor()).unwrap(),
                );
                assert!(d <= 1e-6, "residual gradient, shape {:?}: {d}", shape);
            }
        }
    }
}

#[test]
fn input_gradient_is_the_adjoint_on_non_square_inputs() {
    // candle's own conv2d backward fails when height and width need different output
    // paddings (e.g. 10×11 with stride 2), so check ⟨conv(x), p⟩ = ⟨x, ∂/∂x⟨conv(x), p⟩⟩.
    let dev = Device::Cpu;
    for (n, ci, h, w, co, k, s, p) in [(3, 8, 10, 11, 12, 1, 2, 0), (2, 3, 11, 8, 5, 3, 2, 1)] {
        let x0 = Tensor::randn(0f32, 1.0, (n, ci, h, w), &dev).unwrap();
        let wt = Tensor::randn(0f32, 0.5, (co, ci, k, k), &dev).unwrap();
        let conv = PackedConv::new(&wt, None, s, p).unwrap();
        let y_ref = x0.conv2d(&wt, p, s, 1, 1).unwrap();
        let probe = Tensor::randn(0f32, 1.0, y_ref.dims(), &dev).unwrap();
        let x = Var::from_tensor(&x0).unwrap();
        let y = conv.forward(x.as_tensor(), false).unwrap();
        let g = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let lhs = (y_ref * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let rhs = (&x0 * g.get(x.as_tensor()).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }
}

#[test]
fn gradient_flows_through_stacked_convolutions() {
    // Two convolutions in a row (the second's backward receives the first's op as argument).
    let dev = Device::Cpu;
    let w1 = Tensor::randn(0f32, 0.5, (6, 3, 3, 3), &dev).unwrap();
    let w2 = Tensor::randn(0f32, 0.5, (4, 6, 1, 1), &dev).unwrap();
    let c1 = PackedConv::new(&w1, None, 2, 1).unwrap();
    let c2 = PackedConv::new(&w2, None, 1, 0).unwrap();
    let x0 = Tensor::randn(0f32, 1.0, (2, 3, 9, 9), &dev).unwrap();
    let x = Var::from_tensor(&x0).unwrap();
    let y = c2
        .forward(&c1.forward(x.as_tensor(), true).unwrap(), false)
        .unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let xr = Var::from_tensor(&x0).unwrap();
    let yr = xr
        .as_tensor()
        .conv2d(&w1, 1, 2, 1, 1)
        .unwrap()
        .relu()
        .unwrap()
        .conv2d(&w2, 0, 1, 1, 1)
        .unwrap();
    let gr = yr.sum_all().unwrap().backward().unwrap();
    let want = gr.get(xr.as_tensor()).unwrap();
    let d = max_abs(g.get(x.as_tensor()).unwrap(), want);
    assert!(d <= 1e-5 * scale(want), "{d}");
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &dev).unwrap();
    let conv = PackedConv::new(&w, None, 1, 0).unwrap();
    let wrong_channels = Tensor::zeros((1, 2, 8, 8), DType::F32, &dev).unwrap();
    assert!(conv.forward(&wrong_channels, false).is_err());
    let too_small = Tensor::zeros((1, 3, 2, 2), DType::F32, &dev).unwrap();
    assert!(conv.forward(&too_small, false).is_err());
    let f64_input = Tensor::zeros((1, 3, 8, 8), DType::F64, &dev).unwrap();
    assert!(conv.forward(&f64_input, false).is_err());
    let rect = Tensor::zeros((4, 3, 3, 2), DType::F32, &dev).unwrap();
    assert!(PackedConv::new(&rect, None, 1, 0).is_err());
    assert!(PackedConv::new(&w, None, 0, 0).is_err());
}

#[test]
fn max_pool_matches_the_composite_pool_and_its_gradient() {
    let dev = Device::Cpu;
    for (n, c, h, w, k, s, p) in [
        (2, 3, 9, 11, 3, 2, 1),
        (1, 2, 8, 8, 2, 2, 0),
        (3, 1, 7, 6, 3, 1, 1),
        (1, 4, 112, 112, 3, 2, 1),
    ] {
        let x0 = Tensor::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap();
        let x = Var::from_tensor(&x0).unwrap();
        let y = max_pool2d(x.as_tensor(), k, s, p).unwrap();
        let xr = Var::from_tensor(&x0).unwrap();
        let yr = crate::ops::max_pool2d_composite(xr.as_tensor(), k, s, p).unwrap();
        assert_eq!(max_abs(&y, &yr), 0.0);
        let probe = Tensor::randn(0f32, 1.0, y.dims(), &dev).unwrap();
        let g = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = (yr * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let d = max_abs(
            g.get(x.as_tensor()).unwrap(),
            gr.get(xr.as_tensor()).unwrap(),
        );
        assert!(d < 1e-5, "{d}");
    }
}

#[test]
fn max_pool_gradient_goes_to_the_first_maximum_like_torch() {
    // All-zero input (as after a ReLU): every window ties; torch routes each output's
    // gradient to the window's first element in row-major order.
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::zeros((1, 1, 4, 4), DType::F32, &dev).unwrap()).unwrap();
    let y = max_pool2d(x.as_tensor(), 3, 2, 1).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 2]);
    let g = y.sum_all().unwrap().backward().unwrap();
    let g = g
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    // Windows start at (0,0), (0,1), (1,0), (1,1) after clipping the padding.
    let mut want = vec![0f32; 16];
    for i in [0, 1, 4, 5] {
        want[i] = 1.0;
    }
    assert_eq!(g, want);
}

/// The direct and the Winograd forward pass of one 3×3 stride-1 convolution.
fn both(w: &Tensor, b: &Tensor, padding: usize) -> (PackedConv, PackedConv) {
    let conv = PackedConv::new(w, Some(b), 1, padding).unwrap();
    (
        conv.clone().with_algorithm(ConvAlgorithm::Direct),
        conv.with_algorithm(ConvAlgorithm::Winograd),
    )
}

#[test]
fn winograd_matches_the_direct_product() {
    let dev = Device::Cpu;
    // (batch, c_in, h, w, c_out, padding): odd and even sides, channel counts that are
    // multiples of nothing, batch 1 (parallel within the image) and 16 (over the batch).
    for (n, ci, h, w, co, p) in [
        (1, 5, 7, 9, 3, 1),
        (16, 3, 6, 5, 7, 1),
        (2, 17, 13, 11, 19, 1),
        (1, 64, 14, 14, 64, 1),
        (16, 33, 7, 7, 29, 1),
        (5, 8, 14, 14, 6, 1), // images grouped, the last group smaller
        (3, 8, 1, 1, 4, 1),
        (2, 6, 8, 9, 5, 0),
        (1, 4, 5, 6, 3, 2),
    ] {
        let x = Tensor::randn(0f32, 1.0, (n, ci, h, w), &dev).unwrap();
        let wt = Tensor::randn(0f32, 0.5, (co, ci, 3, 3), &dev).unwrap();
        let b = Tensor::randn(0f32, 0.5, co, &dev).unwrap();
        let (direct, wino) = both(&wt, &b, p);
        let want = direct.forward(&x, false).unwrap();
        let r = Tensor::randn(0f32, 1.0, want.dims(), &dev).unwrap();
        let s = want
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        for (relu, residual) in [(false, false), (true, false), (false, true), (true, true)] {
            let run = |c: &PackedConv| match residual {
                true => c.forward_add(&x, &r, relu).unwrap(),
                false => c.forward(&x, relu).unwrap(),
            };
            let d = max_abs(&run(&wino), &run(&direct));
            assert!(
                d <= 1e-5 * s,
                "({n}, {ci}, {h}, {w}) → {co}, padding {p}, relu {relu}, residual {residual}: \
                 {d} at scale {s}"
            );
        }
    }
}

#[test]
fn winograd_forward_keeps_the_direct_gradient() {
    let dev = Device::Cpu;
    let x0 = Tensor::randn(0f32, 1.0, (2, 6, 9, 7), &dev).unwrap();
    let wt = Tensor::randn(0f32, 0.5, (5, 6, 3, 3), &dev).unwrap();
    let b = Tensor::randn(0f32, 0.5, 5, &dev).unwrap();
    let (direct, wino) = both(&wt, &b, 1);
    let grad = |c: &PackedConv| {
        let x = Var::from_tensor(&x0).unwrap();
        let y = c.forward(x.as_tensor(), false).unwrap();
        let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        g.get(x.as_tensor()).unwrap().clone()
    };
    let want = grad(&direct);
    let d = max_abs(&grad(&wino), &want);
    assert!(d <= 1e-5 * scale(&want), "{d}");
}

#[test]
fn algorithm_names_parse_and_unknown_ones_say_what_to_use() {
    assert_eq!(
        "Direct".parse::<ConvAlgorithm>().unwrap(),
        ConvAlgorithm::Direct
    );
    assert_eq!(
        " winograd ".parse::<ConvAlgorithm>().unwrap(),
        ConvAlgorithm::Winograd
    );
    assert_eq!(
        "auto".parse::<ConvAlgorithm>().unwrap(),
        ConvAlgorithm::Auto
    );
    let e = "fft".parse::<ConvAlgorithm>().unwrap_err().to_string();
    assert!(e.contains("fft") && e.contains("direct"), "{e}");
    // Only 3×3 stride-1 convolutions keep Winograd weights.
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &dev).unwrap();
    let strided = PackedConv::new(&w, None, 2, 1).unwrap();
    assert!(strided
        .with_algorithm(ConvAlgorithm::Winograd)
        .winograd
        .is_none());
    let plain = PackedConv::new(&w, None, 1, 1).unwrap();
    assert!(plain
        .clone()
        .with_algorithm(ConvAlgorithm::Winograd)
        .winograd
        .is_some());
    assert!(plain
        .with_algorithm(ConvAlgorithm::Direct)
        .winograd
        .is_none());
}
