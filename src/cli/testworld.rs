use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use xai::testworld::train::{self, Task, TrainConfig};
use xai::testworld::{ObjectKind, Scene, SceneConfig, SceneKind};

use super::{write_atomic, CliError, CliResult};

#[derive(Debug, Args)]
pub(crate) struct TestWorldArgs {
    #[command(subcommand)]
    command: TestWorldCommand,
}

#[derive(Debug, Subcommand)]
enum TestWorldCommand {
    /// Render seeded scenes to disk with their masks and labels.
    Generate(GenerateArgs),
    /// Train the `objects` or `scenes` classifier from scratch (seeded, CPU).
    Train(TrainArgs),
    /// Accuracy of a classifier on held-out scenes.
    Eval(EvalArgs),
    /// Score explanation methods against the true object masks of held-out scenes (pointing
    /// game, energy in mask, IoU) and print the table.
    Benchmark(BenchmarkArgs),
}

#[derive(Debug, Args)]
struct BenchmarkArgs {
    /// Methods to score, comma-separated: `center` (a centred Gaussian, the baseline any
    /// method must beat), `input-gradient` (|∂ logit / ∂ input|), any CAM method name
    /// (`gradcam`, `gradcam++`, `xgradcam`, `hirescam`, `layercam`, `eigencam`,
    /// `eigengradcam`, `ablationcam`, `scorecam`; on `layer4`), `lime` (quickshift
    /// superpixels, hidden in black, each pixel scored by its superpixel's weight), or `all`.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    methods: Vec<String>,
    /// Number of held-out scenes.
    #[arg(long, default_value_t = 200)]
    n: usize,
    /// Side of the rendered scenes (they are resized to the model's resolution).
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Target layer of the CAM methods (default: the model's last spatial stage, `layer4`).
    #[arg(long, value_name = "NAME")]
    layer: Option<String>,
    /// Perturbed samples of each LIME explanation.
    #[arg(long, default_value_t = 1000)]
    lime_samples: usize,
    /// Also write the table as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Number of scenes.
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// Seed of the first scene; scene i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Side of the square scenes in pixels.
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Force the main object's kind (goldfish, ball, star, flower, house, car, leaf, mushroom).
    #[arg(long)]
    object: Option<String>,
    /// Force the background kind (water, grass, sand, sky, brick, snow).
    #[arg(long)]
    scene: Option<String>,
    /// Output folder: images/<name>.png, masks/<name>.png (the main object's mask),
    /// instances/<name>/<i>_<kind>.png (each object instance's visible pixels),
    /// concepts/<name>/<concept>.png, labels.csv, labels.json and generator.json (the
    /// parameters that regenerate these scenes).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// `objects` (the foreground object) or `scenes` (the background).
    #[arg(long)]
    task: String,
    /// Output weights file (safetensors, torchvision names).
    #[arg(long, value_name = "FILE.safetensors")]
    out: PathBuf,
    /// Optimisation steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Scenes per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Training and inference resolution.
    #[arg(long)]
    resolution: Option<u32>,
    /// Stem width of the network.
    #[arg(long)]
    width: Option<usize>,
    /// Seed of initialisation and training scenes (< 65536).
    #[arg(long)]
    seed: Option<u64>,
    /// Held-out scenes to evaluate on after training (rendered at 224×224).
    #[arg(long, default_value_t = 500)]
    eval: usize,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// `objects` or `scenes`.
    #[arg(long)]
    task: String,
    /// Weights to evaluate (default: the committed model of the task).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Training resolution of the weights (default: the committed models').
    #[arg(long)]
    resolution: Option<u32>,
    /// Number of held-out scenes.
    #[arg(long, default_value_t = 500)]
    n: usize,
    /// Side of the rendered scenes (they are resized to the model's resolution).
    #[arg(long, default_value_t = 224)]
    size: u32,
}

pub(crate) fn run(args: TestWorldArgs) -> CliResult<()> {
    match args.command {
        TestWorldCommand::Generate(a) => generate(a),
        TestWorldCommand::Train(a) => train_cmd(a),
        TestWorldCommand::Eval(a) => eval(a),
        TestWorldCommand::Benchmark(a) => benchmark(a),
    }
}

fn generate(a: GenerateArgs) -> CliResult<()> {
    if a.n == 0 {
        return Err(CliError::Msg("--n must be at least 1 scene".into()));
    }
    let object = a
        .object
        .as_deref()
        .map(ObjectKind::from_name)
        .transpose()
        .map_err(|e| tw(e.into()))?;
    let scene_kind = a
        .scene
        .as_deref()
        .map(SceneKind::from_name)
        .transpose()
        .map_err(|e| tw(e.into()))?;
    let config = SceneConfig {
        width: a.size,
        height: a.size,
        ..SceneConfig::default()
    };
    let mut csv = String::from("image,seed,object,scene,concepts\n");
    let mut json = Vec::new();
    let bar = progress(a.n as u64, "rendering");
    for i in 0..a.n as u64 {
        let seed = a.seed + i;
        let scene =
            Scene::generate_with(seed, &config, object, scene_kind).map_err(|e| tw(e.into()))?;
        let name = format!("scene_{seed:06}");
        save_png(
            &a.out.join("images").join(format!("{name}.png")),
            &scene.image,
        )?;
        save_png(
            &a.out.join("masks").join(format!("{name}.png")),
            &scene.object_mask().to_gray_image(),
        )?;
        let mut instances = Vec::new();
        for (i, inst) in scene.instances.iter().enumerate() {
            let file = format!("instances/{name}/{i}_{}.png", inst.kind.name());
            save_png(&a.out.join(&file), &inst.mask.to_gray_image())?;
            instances.push(
                serde_json::json!({"kind": inst.kind.name(), "mask": file, "bbox": inst.bbox}),
            );
        }
        for (concept, mask) in &scene.concepts {
            save_png(
                &a.out
                    .join("concepts")
                    .join(&name)
                    .join(format!("{}.png", concept.name)),
                &mask.to_gray_image(),
            )?;
        }
        let concepts = scene.concept_names();
        let _ = writeln!(
            csv,
            "images/{name}.png,{seed},{},{},{}",
            scene.object.name(),
            scene.scene.name(),
            concepts.join(";")
        );
        json.push(serde_json::json!({
            "image": format!("images/{name}.png"),
            "mask": format!("masks/{name}.png"),
            "seed": seed,
            "object": scene.object.name(),
            "scene": scene.scene.name(),
            "concepts": concepts,
            "instances": instances,
        }));
        bar.inc(1);
    }
    bar.finish_and_clear();
    write_text(&a.out.join("labels.csv"), &csv)?;
    // Enough to regenerate exactly these scenes: forcing a kind changes what a seed draws.
    let generator = serde_json::json!({
        "generator": "xai testworld generate",
        "version": env!("CARGO_PKG_VERSION"),
        "n": a.n,
        "seed": a.seed,
        "size": a.size,
        "object": a.object,
        "scene": a.scene,
    });
    let text =
        serde_json::to_string_pretty(&generator).map_err(|e| CliError::Msg(e.to_string()))?;
    write_text(&a.out.join("generator.json"), &text)?;
    let text = serde_json::to_string_pretty(&json).map_err(|e| CliError::Msg(e.to_string()))?;
    write_text(&a.out.join("labels.json"), &text)?;
    eprintln!("wrote {} scenes to {}", a.n, a.out.display());
    Ok(())
}

fn train_cmd(a: TrainArgs) -> CliResult<()> {
    let task = Task::from_name(&a.task).map_err(tw)?;
    let mut config = TrainConfig::new(task);
    if let Some(v) = a.steps {
        config.steps = v;
    }
    if let Some(v) = a.batch_size {
        config.batch_size = v;
    }
    if let Some(v) = a.resolution {
        config.resolution = v;
    }
    if let Some(v) = a.width {
        config.width = v;
    }
    if let Some(v) = a.seed {
        config.seed = v;
    }
    let bar = progress(config.steps as u64, "training");
    let started = std::time::Instant::now();
    // In a log file (a batch job) the bar is hidden: print a line every 5% instead.
    let log_every = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        0
    } else {
        (config.steps / 20).max(1)
    };
    let tensors = train::train(&config, |p| {
        bar.set_position(p.step as u64);
        bar.set_message(format!(
            "loss {:.3} batch acc {:.0}%",
            p.loss,
            p.batch_accuracy * 100.0
        ));
        if log_every > 0 && (p.step % log_every == 0 || p.step == p.steps) {
            eprintln!(
                "step {}/{}: loss {:.3}, batch accuracy {:.0}%, {:.0} s",
                p.step,
                p.steps,
                p.loss,
                p.batch_accuracy * 100.0,
                started.elapsed().as_secs_f64()
            );
        }
    })
    .map_err(tw)?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
    }
    train::save_weights(&tensors, &a.out).map_err(tw)?;
    eprintln!(
        "trained {} in {secs:.0} s; wrote {}",
        task.name(),
        a.out.display()
    );
    if a.eval > 0 {
        let model = train::model_from_tensors(
            tensors,
            task,
            config.input_spec(),
            "<trained>",
            &xai::models::candle_core::Device::Cpu,
        )
        .map_err(tw)?;
        let acc = train::evaluate(&model, task, a.eval, &SceneConfig::default()).map_err(tw)?;
        println!(
            "{}",
            serde_json::json!({"task": task.name(), "config": config, "train_seconds": secs, "heldout_scenes": a.eval, "heldout_accuracy": acc})
        );
    }
    Ok(())
}

fn eval(a: EvalArgs) -> CliResult<()> {
    let task = Task::from_name(&a.task).map_err(tw)?;
    let model: Box<dyn xai::models::Backbone> = match &a.weights {
        None => Box::new(xai::testworld::pretrained::model(task).map_err(tw)?),
        Some(path) => {
            let mut config = TrainConfig::new(task);
            if let Some(r) = a.resolution {
                config.resolution = r;
            }
            let file =
                xai::models::WeightsFile::open(path, &xai::models::candle_core::Device::Cpu)?;
            Box::new(
                train::model_from_file(
                    &file,
                    task,
                    config.input_spec(),
                    &xai::models::candle_core::Device::Cpu,
                )
                .map_err(tw)?,
            )
        }
    };
    let scenes = SceneConfig {
        width: a.size,
        height: a.size,
        ..SceneConfig::default()
    };
    let acc = train::evaluate(model.as_ref(), task, a.n, &scenes).map_err(tw)?;
    println!(
        "{}",
        serde_json::json!({"task": task.name(), "heldout_scenes": a.n, "scene_size": a.size, "accuracy": acc})
    );
    Ok(())
}

fn benchmark(a: BenchmarkArgs) -> CliResult<()> {
    use xai::testworld::benchmark::{self as bench, CenterBaseline, Explainer, InputGradient};
    let mut names: Vec<String> = Vec::new();
    for m in &a.methods {
        match m.trim() {
            "all" => {
                names.extend(["center", "input-gradient"].map(String::from));
                names.extend(xai::cam::Method::names().into_iter().map(String::from));
                names.push("lime".into());
            }
            other => names.push(other.to_string()),
        }
    }
    let explainers: Vec<Box<dyn Explainer>> = names
        .iter()
        .map(|m| match m.as_str() {
            "center" => Ok(Box::new(CenterBaseline) as Box<dyn Explainer>),
            "input-gradient" => Ok(Box::new(InputGradient) as Box<dyn Explainer>),
            "lime" => Ok(Box::new(LimeExplainer { num_samples: a.lime_samples }) as Box<dyn Explainer>),
            other => match other.parse::<xai::cam::Method>() {
                Ok(method) => Ok(Box::new(CamExplainer(method, a.layer.clone())) as Box<dyn Explainer>),
                Err(_) => Err(CliError::Msg(format!(
                    "unknown method `{other}` for --methods; known: all, center, input-gradient, lime, {}",
                    xai::cam::Method::names().join(", ")
                ))),
            },
        })
        .collect::<CliResult<_>>()?;
    let model = xai::testworld::pretrained::model(Task::Objects).map_err(tw)?;
    let scenes = SceneConfig {
        width: a.size,
        height: a.size,
        ..SceneConfig::default()
    };
    let mut rows = Vec::new();
    for e in &explainers {
        let bar = progress(a.n as u64, &e.name());
        rows.push(
            bench::run(e.as_ref(), &model, a.n, &scenes, |i| {
                bar.set_position(i as u64)
            })
            .map_err(tw)?,
        );
        bar.finish_and_clear();
    }
    println!("| method | scenes | pointing game | energy in mask | IoU (top-|mask| pixels) |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.3} |",
            r.method, r.scenes, r.pointing_game, r.energy_in_mask, r.iou
        );
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&rows).map_err(|e| CliError::Msg(e.to_string()))?;
        write_text(path, &text)?;
    }
    Ok(())
}

/// A CAM method as a benchmark explainer: the normalised map on the default layer.
struct CamExplainer(xai::cam::Method, Option<String>);

impl xai::testworld::benchmark::Explainer for CamExplainer {
    fn name(&self) -> String {
        match &self.1 {
            Some(layer) => format!("{} ({layer})", self.0.name()),
            None => self.0.name().to_string(),
        }
    }

    fn explain(
        &self,
        model: &dyn xai::models::Backbone,
        input: &xai::models::candle_core::Tensor,
        class: usize,
    ) -> Result<(usize, usize, Vec<f32>), xai::testworld::TestWorldError> {
        let fail = |e: xai::cam::Error| xai::testworld::TestWorldError::Parameter {
            name: "method",
            reason: format!("{}: {e}", self.0.name()),
        };
        let mut cam =
            xai::cam::Cam::new(&model, self.0.build(None).map_err(fail)?).map_err(fail)?;
        if let Some(layer) = &self.1 {
            cam = cam.with_layers(std::slice::from_ref(layer)).map_err(fail)?;
        }
        let x = input.unsqueeze(0)?;
        let map = cam
            .compute(&x, &xai::cam::Targets::Class(class))
            .map_err(fail)?
            .normalise();
        let (_, h, w) = map.dim();
        Ok((h, w, map.iter().copied().collect()))
    }
}

/// LIME as a benchmark explainer: lime's defaults (quickshift 4/200/0.2, kernel width 0.25)
/// with hidden superpixels black (lime's tutorial), seed 0; each pixel gets its superpixel's
/// weight for the class.
struct LimeExplainer {
    num_samples: usize,
}

impl xai::testworld::benchmark::Explainer for LimeExplainer {
    fn name(&self) -> String {
        format!("lime ({} samples)", self.num_samples)
    }

    fn explain(
        &self,
        model: &dyn xai::models::Backbone,
        input: &xai::models::candle_core::Tensor,
        class: usize,
    ) -> Result<(usize, usize, Vec<f32>), xai::testworld::TestWorldError> {
        use xai::lime::Segmenter;
        let fail = |e: xai::lime::Error| xai::testworld::TestWorldError::Parameter {
            name: "lime",
            reason: e.to_string(),
        };
        // The harness hands over the normalised tensor; LIME perturbs the 8-bit picture.
        let (_, h, w) = input.dims3()?;
        let picture = xai::models::preprocess::to_image(input, model.input_spec())?;
        let segments = xai::lime::Quickshift::default()
            .segment(xai::lime::image_to_float(&picture).view())
            .map_err(fail)?;
        let explainer = xai::lime::LimeImageExplainer::new(xai::lime::LimeConfig {
            num_samples: self.num_samples,
            batch_size: 64,
            hide_color: xai::lime::HideColor::Rgb([0, 0, 0]),
            labels: xai::lime::LabelChoice::Labels(vec![class]),
            ..Default::default()
        })
        .map_err(fail)?;
        let mut classifier = xai::lime::BackboneClassifier::new(model);
        let exp = explainer
            .explain(&picture, segments, &mut classifier)
            .map_err(fail)?;
        let map = xai::lime::render::weight_map(&exp, class).map_err(fail)?;
        Ok((h, w, map.iter().copied().collect()))
    }
}

fn tw(e: xai::testworld::TestWorldError) -> CliError {
    CliError::Msg(e.to_string())
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

fn save_png<P, C>(path: &std::path::Path, img: &image::ImageBuffer<P, C>) -> CliResult<()>
where
    P: image::Pixel + image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    write_atomic(path, |tmp| {
        img.save_with_format(tmp, image::ImageFormat::Png)
            .map_err(|e| CliError::Msg(format!("{}: {e}", tmp.display())))
    })
}

fn write_text(path: &std::path::Path, text: &str) -> CliResult<()> {
    write_atomic(path, |tmp| {
        std::fs::write(tmp, text).map_err(|e| CliError::io(tmp, e))
    })
}
