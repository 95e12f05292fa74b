use std::path::PathBuf;

use clap::Args;
use ndarray_npy::WriteNpyExt;

use super::{write_atomic, CliError, CliResult, ModelArgs};

#[derive(Debug, Args)]
pub(crate) struct PreprocessArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Image file to preprocess with the model's evaluation transform.
    #[arg(long, value_name = "IMG")]
    image: PathBuf,
    /// Output `.npy` file: the (3, H, W) float32 tensor the model would see.
    #[arg(long, value_name = "FILE.npy")]
    out: PathBuf,
}

pub(crate) fn run(args: PreprocessArgs) -> CliResult<()> {
    let model = args.model.load()?;
    let x = xai::models::preprocess::load_input(
        &args.image,
        model.input_spec(),
        &xai::models::candle_core::Device::Cpu,
    )?;
    let dims = x.dims().to_vec();
    let data = x.flatten_all()?.to_vec1::<f32>()?;
    let array =
        ndarray::Array::from_shape_vec(dims, data).map_err(|e| CliError::Msg(e.to_string()))?;
    write_atomic(&args.out, |tmp| {
        let f = std::fs::File::create(tmp).map_err(|e| CliError::io(tmp, e))?;
        array
            .write_npy(f)
            .map_err(|e| CliError::Msg(format!("{}: {e}", tmp.display())))
    })?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
