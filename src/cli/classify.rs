use std::path::{Path, PathBuf};

use clap::Args;
use ndarray_npy::WriteNpyExt;
use serde::Serialize;
use xai::models::candle_core::{Tensor, D};

use super::{collect_images, write_atomic, CliError, CliResult, ModelArgs};

#[derive(Debug, Args)]
pub(crate) struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Image file (any format the `image` crate reads, or a preprocessed (3, H, W) float
    /// `.npy`), or a folder of them (searched recursively).
    #[arg(long, value_name = "IMG|DIR")]
    image: PathBuf,
    /// Number of classes to print per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON (one object per image, in a list) instead of a table.
    #[arg(long)]
    json: bool,
    /// Save the raw logits as float32 `.npy`: shape (classes,) for one image, (images,
    /// classes) for a folder, in the sorted order of the files.
    #[arg(long, value_name = "FILE.npy")]
    save_logits: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
}

#[derive(Debug, Serialize)]
struct Prediction {
    rank: usize,
    index: usize,
    label: String,
    probability: f32,
    logit: f32,
}

#[derive(Debug, Serialize)]
struct ImageResult {
    image: String,
    top: Vec<Prediction>,
}

pub(crate) fn run(args: ClassifyArgs) -> CliResult<()> {
    if args.top == 0 || args.batch_size == 0 {
        return Err(CliError::Msg(
            "--top and --batch-size must be at least 1".into(),
        ));
    }
    let images = collect_images(&args.image)?;
    let model = args.model.load()?;
    let mut all_logits: Vec<Vec<f32>> = Vec::with_capacity(images.len());
    let mut results = Vec::with_capacity(images.len());
    for chunk in images.chunks(args.batch_size) {
        let inputs = chunk
            .iter()
            .map(|p| xai::models::preprocess::load_input(p, model.input_spec(), model.device()))
            .collect::<Result<Vec<_>, _>>()?;
        let batch = stack_same_size(&inputs, chunk)?;
        let logits = model.forward(&batch)?;
        let probs = xai::models::candle_core::Tensor::exp(&log_softmax(&logits)?)?;
        let logits = logits.to_vec2::<f32>()?;
        let probs = probs.to_vec2::<f32>()?;
        for ((path, l), p) in chunk.iter().zip(logits).zip(probs) {
            if l.iter().any(|v| !v.is_finite()) {
                return Err(CliError::Msg(format!(
                    "{}: the model produced non-finite logits (NaN or infinity); check the input and the weights",
                    path.display()
                )));
            }
            let mut order: Vec<usize> = (0..l.len()).collect();
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
            let top = order
                .iter()
                .take(args.top)
                .enumerate()
                .map(|(rank, &i)| Prediction {
                    rank: rank + 1,
                    index: i,
                    label: model.labels().name(i).into_owned(),
                    probability: p[i],
                    logit: l[i],
                })
                .collect();
            results.push(ImageResult {
                image: path.display().to_string(),
                top,
            });
            all_logits.push(l);
        }
    }
    if args.json {
        let text =
            serde_json::to_string_pretty(&results).map_err(|e| CliError::Msg(e.to_string()))?;
        println!("{text}");
    } else {
        for r in &results {
            println!("{}", r.image);
            for p in &r.top {
                println!(
                    "  {:>2}. {:>5}  {:>7.3}%  {}",
                    p.rank,
                    p.index,
                    p.probability * 100.0,
                    p.label
                );
            }
        }
    }
    if let Some(path) = &args.save_logits {
        save_logits(path, &all_logits, images.len() == 1 && args.image.is_file())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn log_softmax(logits: &Tensor) -> CliResult<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?;
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

fn stack_same_size(inputs: &[Tensor], paths: &[PathBuf]) -> CliResult<Tensor> {
    let first = inputs[0].dims();
    if let Some((t, p)) = inputs.iter().zip(paths).find(|(t, _)| t.dims() != first) {
        return Err(CliError::Msg(format!(
            "{}: input shape {:?} differs from {:?} of {}; .npy inputs in one batch must share a size (use --batch-size 1)",
            p.display(),
            t.dims(),
            first,
            paths[0].display()
        )));
    }
    Ok(Tensor::stack(inputs, 0)?)
}

fn save_logits(path: &Path, logits: &[Vec<f32>], single: bool) -> CliResult<()> {
    let k = logits.first().map_or(0, Vec::len);
    let flat: Vec<f32> = logits.iter().flatten().copied().collect();
    let shape: Vec<usize> = if single {
        vec![k]
    } else {
        vec![logits.len(), k]
    };
    let array =
        ndarray::ArrayD::from_shape_vec(shape, flat).map_err(|e| CliError::Msg(e.to_string()))?;
    write_atomic(path, |tmp| {
        let f = std::fs::File::create(tmp).map_err(|e| CliError::io(tmp, e))?;
        array
            .write_npy(f)
            .map_err(|e| CliError::Msg(format!("{}: {e}", tmp.display())))
    })
}
