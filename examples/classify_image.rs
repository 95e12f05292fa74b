//! Classify an image with any backbone, through the library rather than the CLI.
//!
//! ```text
//! cargo run --release --example classify_image                       # built-in model, bundled photo
//! cargo run --release --example classify_image -- IMG resnet50 resnet50.safetensors
//! ```
//!
//! Shows the three steps every xai method builds on: load a backbone, preprocess an image
//! with the backbone's own input spec, and run it (here to the output; explanation methods
//! stop at a named layer with `forward_to` and continue with `forward_from`).

use xai::models::candle_core::{Device, D};
use xai::models::Backbone;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let image = args
        .next()
        .unwrap_or_else(|| "testdata/preprocess/chelsea_300x200.png".into());
    let arch = args.next();
    let weights = args.next().map(std::path::PathBuf::from);

    let model = xai::zoo::load(arch.as_deref(), weights.as_deref(), &Device::Cpu)?;
    let input = xai::models::preprocess::load_input(&image, model.input_spec(), model.device())?;
    let batch = input.unsqueeze(0)?;

    let features = model.forward_to(&batch, "layer4")?;
    let logits = model.forward_from(&features, "layer4")?;
    let probs = xai::models::candle_core::Tensor::exp(
        &logits.broadcast_sub(&logits.max_keepdim(D::Minus1)?)?,
    )?;
    let probs = probs
        .broadcast_div(&probs.sum_keepdim(D::Minus1)?)?
        .squeeze(0)?
        .to_vec1::<f32>()?;

    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    println!("{image}: layer4 features {:?}", features.dims());
    for &i in order.iter().take(5) {
        println!("  {:>6.2}%  {}", probs[i] * 100.0, model.labels().name(i));
    }
    Ok(())
}
