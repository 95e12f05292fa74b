//! Training the test world's two classifiers, in Rust with candle.
//!
//! The network is torchvision's ResNet-18 structure at a reduced width, built here in
//! training mode (batch statistics, trainable batch-norm) with torchvision's parameter names,
//! so that the trained weights load into [`xai_models::ResNet`] (which folds batch-norm for
//! inference) and into PyTorch (`tools/testworld/`) unchanged.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use candle_nn::{BatchNorm, Conv2d, Conv2dConfig, Linear, Module, ModuleT, VarBuilder, VarMap};
use xai_models::{Backbone, InputSpec, Labels, ResNet, ResNetConfig, WeightsFile};

use crate::{ObjectKind, Scene, SceneConfig, SceneKind, TestWorldError};

/// Seeds at and above this value are never used for training: held-out scenes live here.
pub const HELD_OUT_SEED_BASE: u64 = 1 << 48;

/// Which label a model learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// The kind of the main foreground object (like an ImageNet classifier).
    Objects,
    /// The kind of background scene (like a Places365 classifier).
    Scenes,
}

impl Task {
    /// Both tasks.
    pub const ALL: [Task; 2] = [Task::Objects, Task::Scenes];

    /// `objects` or `scenes`.
    pub fn name(self) -> &'static str {
        match self {
            Task::Objects => "objects",
            Task::Scenes => "scenes",
        }
    }

    /// Parses `objects` / `scenes`.
    pub fn from_name(name: &str) -> Result<Self, TestWorldError> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| TestWorldError::Parameter {
                name: "task",
                reason: format!("unknown task `{name}`; known: objects, scenes"),
            })
    }

    /// The class names, index = class.
    pub fn labels(self) -> Labels {
        let names = match self {
            Task::Objects => ObjectKind::ALL
                .iter()
                .map(|k| k.name().to_string())
                .collect(),
            Task::Scenes => SceneKind::ALL
                .iter()
                .map(|k| k.name().to_string())
                .collect(),
        };
        Labels::new(names)
    }

    /// The class of `scene` for this task.
    pub fn label(self, scene: &Scene) -> usize {
        match self {
            Task::Objects => scene.object.index(),
            Task::Scenes => scene.scene.index(),
        }
    }
}

/// Settings of a training run; every default is what the committed models used.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// What to learn.
    pub task: Task,
    /// Side of the (square) training and inference input, in pixels.
    pub resolution: u32,
    /// Stem width of the ResNet-18-structured network (64 in torchvision).
    pub width: usize,
    /// Optimisation steps.
    pub steps: usize,
    /// Scenes per step (each scene is new: the training set is unbounded).
    pub batch_size: usize,
    /// Peak learning rate of AdamW (linear warm-up, cosine decay).
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of the weight initialisation and of the training scenes.
    pub seed: u64,
}

impl TrainConfig {
    /// The defaults for `task`.
    pub fn new(task: Task) -> Self {
        Self {
            task,
            resolution: 112,
            width: 8,
            // Objects must be told apart from a smaller object of another kind and from
            // clutter; backgrounds are textures and are learnt much sooner.
            steps: match task {
                Task::Objects => 1500,
                Task::Scenes => 400,
            },
            batch_size: 32,
            learning_rate: 4e-3,
            weight_decay: 1e-4,
            seed: 0,
        }
    }

    fn validate(&self) -> Result<(), TestWorldError> {
        let bad = |name, reason: &str| {
            Err(TestWorldError::Parameter {
                name,
                reason: reason.into(),
            })
        };
        if self.resolution < 32 {
            return bad("resolution", "must be at least 32 pixels");
        }
        if self.width == 0 || self.steps == 0 || self.batch_size < 2 {
            return bad(
                "width/steps/batch_size",
                "width and steps must be positive, batch_size at least 2",
            );
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be a positive number");
        }
        if self.seed >= 1 << 16 {
            return bad(
                "seed",
                "must be below 65536 (higher seeds are reserved for held-out scenes)",
            );
        }
        Ok(())
    }

    /// The input spec of the trained model: no resize beyond the training resolution.
    pub fn input_spec(&self) -> InputSpec {
        let r = self.resolution as usize;
        InputSpec {
            height: r,
            width: r,
            resize: r,
            ..InputSpec::imagenet()
        }
    }

    /// Training scenes are rendered at the default 224×224 and resized like any input, so
    /// the model sees the same pixels in training as when it classifies a saved scene.
    fn scene_config(&self) -> SceneConfig {
        SceneConfig::default()
    }
}

/// One report from a training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainProgress {
    /// Steps done.
    pub step: usize,
    /// Steps in the run.
    pub steps: usize,
    /// Cross-entropy of the last batch.
    pub loss: f32,
    /// Accuracy on the last batch (training mode).
    pub batch_accuracy: f32,
}

struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBn {
    fn new(
        vb: &VarBuilder,
        conv: &str,
        bn: &str,
        (cin, cout, k, stride): (usize, usize, usize, usize),
    ) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig {
            padding: k / 2,
            stride,
            ..Default::default()
        };
        Ok(Self {
            conv: candle_nn::conv2d_no_bias(cin, cout, k, cfg, vb.pp(conv))?,
            bn: candle_nn::batch_norm(cout, 1e-5, vb.pp(bn))?,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.bn.forward_t(&self.conv.forward(x)?, train)
    }
}

struct BasicBlock {
    c1: ConvBn,
    c2: ConvBn,
    downsample: Option<ConvBn>,
}

/// ResNet-18 structure in training mode, with torchvision's names.
struct TrainNet {
    stem: ConvBn,
    blocks: Vec<BasicBlock>,
    fc: Linear,
}

impl TrainNet {
    fn new(vb: &VarBuilder, width: usize, classes: usize) -> candle_core::Result<Self> {
        let stem = ConvBn::new(vb, "conv1", "bn1", (3, width, 7, 2))?;
        let mut blocks = Vec::new();
        let mut cin = width;
        for stage in 0..4 {
            let planes = width << stage;
            for b in 0..2 {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let p = format!("layer{}.{b}", stage + 1);
                let c1 = ConvBn::new(
                    vb,
                    &format!("{p}.conv1"),
                    &format!("{p}.bn1"),
                    (cin, planes, 3, stride),
                )?;
                let c2 = ConvBn::new(
                    vb,
                    &format!("{p}.conv2"),
                    &format!("{p}.bn2"),
                    (planes, planes, 3, 1),
                )?;
                let downsample = if stride != 1 || cin != planes {
                    Some(ConvBn::new(
                        vb,
                        &format!("{p}.downsample.0"),
                        &format!("{p}.downsample.1"),
                        (cin, planes, 1, stride),
                    )?)
                } else {
                    None
                };
                blocks.push(BasicBlock { c1, c2, downsample });
                cin = planes;
            }
        }
        let fc = candle_nn::linear(cin, classes, vb.pp("fc"))?;
        Ok(Self { stem, blocks, fc })
    }

    fn forward(&self, x: &Tensor, train: bool) -> xai_models::Result<Tensor> {
        let x = self.stem.forward(x, train)?.relu()?;
        let mut x = xai_models::ops::max_pool2d(&x, 3, 2, 1)?;
        for b in &self.blocks {
            let y = b.c1.forward(&x, train)?.relu()?;
            let y = b.c2.forward(&y, train)?;
            let shortcut = match &b.downsample {
                Some(d) => d.forward(&x, train)?,
                None => x.clone(),
            };
            x = (y + shortcut)?.relu()?;
        }
        Ok(self.fc.forward(&x.mean((2, 3))?)?)
    }
}

/// A batch of scenes as a normalised `(N, 3, H, W)` tensor and their labels.
pub fn scene_batch(
    seeds: impl IntoIterator<Item = u64>,
    config: &SceneConfig,
    task: Task,
    spec: &InputSpec,
    device: &Device,
) -> Result<(Tensor, Vec<u32>), TestWorldError> {
    let seeds: Vec<u64> = seeds.into_iter().collect();
    // Rendering is plain CPU work with no shared state: split it across the cores.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(seeds.len().max(1));
    let per = seeds.len().div_ceil(workers.max(1)).max(1);
    let rendered: Vec<Result<Vec<(image::RgbImage, u32)>, TestWorldError>> =
        std::thread::scope(|s| {
            let handles: Vec<_> = seeds
                .chunks(per)
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|&seed| {
                                let scene = Scene::generate(seed, config)?;
                                let img =
                                    xai_models::preprocess::resize_and_crop(&scene.image, spec);
                                Ok((img, task.label(&scene) as u32))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(TestWorldError::Parameter {
                            name: "scene",
                            reason: "a rendering thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
    let mut inputs = Vec::with_capacity(seeds.len());
    let mut labels = Vec::with_capacity(seeds.len());
    for part in rendered {
        for (img, label) in part? {
            inputs.push(xai_models::preprocess::to_tensor(&img, spec, device)?);
            labels.push(label);
        }
    }
    Ok((Tensor::stack(&inputs, 0)?, labels))
}

/// Trains a classifier for `config.task` and returns its weights with torchvision names.
///
/// `on_progress` is called after every step (print it, draw a progress bar, or ignore it).
pub fn train(
    config: &TrainConfig,
    mut on_progress: impl FnMut(&TrainProgress),
) -> Result<HashMap<String, Tensor>, TestWorldError> {
    config.validate()?;
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let classes = config.task.labels().len();
    let net = TrainNet::new(&vb, config.width, classes)?;
    let params = ParamsAdamW {
        lr: config.learning_rate,
        weight_decay: config.weight_decay,
        ..Default::default()
    };
    let trainable: Vec<_> = {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| TestWorldError::Parameter {
                name: "varmap",
                reason: "poisoned lock".into(),
            })?;
        data.iter()
            .filter(|(name, _)| !name.ends_with("running_mean") && !name.ends_with("running_var"))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut opt = AdamW::new(trainable, params)?;
    let spec = config.input_spec();
    let scenes = config.scene_config();
    let warmup = (config.steps / 20).max(1);
    for step in 0..config.steps {
        let lr = if step < warmup {
            config.learning_rate * (step + 1) as f64 / warmup as f64
        } else {
            let t = (step - warmup) as f64 / (config.steps - warmup).max(1) as f64;
            config.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        };
        opt.set_learning_rate(lr);
        let first = (config.seed << 32) + (step * config.batch_size) as u64;
        let (x, labels) = scene_batch(
            first..first + config.batch_size as u64,
            &scenes,
            config.task,
            &spec,
            &device,
        )?;
        let y = Tensor::new(labels.as_slice(), &device)?;
        let logits = net.forward(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        opt.backward_step(&loss)?;
        let correct = logits
            .argmax(D::Minus1)?
            .eq(&y)?
            .to_dtype(DType::F32)?
            .mean_all()?
            .to_scalar::<f32>()?;
        on_progress(&TrainProgress {
            step: step + 1,
            steps: config.steps,
            loss: loss.to_scalar::<f32>()?,
            batch_accuracy: correct,
        });
    }
    let data = varmap
        .data()
        .lock()
        .map_err(|_| TestWorldError::Parameter {
            name: "varmap",
            reason: "poisoned lock".into(),
        })?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect())
}

/// Builds the inference model (batch-norm folded) from trained weights.
pub fn model_from_tensors(
    tensors: HashMap<String, Tensor>,
    task: Task,
    spec: InputSpec,
    origin: &str,
    device: &Device,
) -> Result<ResNet, TestWorldError> {
    model_from_file(
        &WeightsFile::from_tensors(origin, tensors),
        task,
        spec,
        device,
    )
}

/// Builds the inference model (batch-norm folded) from a weights file of `task`'s model,
/// e.g. one written by [`save_weights`] and opened with [`WeightsFile::open`].
pub fn model_from_file(
    file: &WeightsFile,
    task: Task,
    spec: InputSpec,
    device: &Device,
) -> Result<ResNet, TestWorldError> {
    Ok(
        ResNet::from_weights(file, ResNetConfig::resnet18(), device)?
            .with_labels(task.labels())?
            .with_input_spec(spec),
    )
}

/// Saves trained weights as safetensors (torchvision names), atomically.
pub fn save_weights(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<(), TestWorldError> {
    let tmp = path.with_extension("safetensors.tmp");
    candle_core::safetensors::save(tensors, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| TestWorldError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Accuracy of `model` on `n` held-out scenes rendered at `scene_config`'s size and
/// preprocessed with the model's own input spec (the path examples and the CLI take).
pub fn evaluate(
    model: &dyn Backbone,
    task: Task,
    n: usize,
    scene_config: &SceneConfig,
) -> Result<f32, TestWorldError> {
    if n == 0 {
        return Err(TestWorldError::Parameter {
            name: "n",
            reason: "evaluate at least one scene".into(),
        });
    }
    let mut correct = 0usize;
    let seeds: Vec<u64> = (0..n as u64).map(|i| HELD_OUT_SEED_BASE + i).collect();
    for chunk in seeds.chunks(32) {
        let (x, labels) = scene_batch(
            chunk.iter().copied(),
            scene_config,
            task,
            model.input_spec(),
            model.device(),
        )?;
        let pred = model.forward(&x)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
        correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
    }
    Ok(correct as f32 / n as f32)
}
