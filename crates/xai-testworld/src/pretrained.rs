//! The committed models of the test world, built into the crate.
//!
//! Both are ResNet-18-structured networks trained by `xai testworld train` (see
//! `docs/TESTWORLD.md` for the command, the training settings and held-out accuracy). The
//! weights are safetensors with torchvision names (`models/*.safetensors` in this crate), so
//! PyTorch loads them too (`tools/testworld/load_in_pytorch.py`).

use candle_core::Device;
use xai_models::ResNet;

use crate::train::{self, Task, TrainConfig};
use crate::TestWorldError;

const OBJECTS: &[u8] = include_bytes!("../models/objects.safetensors");
const SCENES: &[u8] = include_bytes!("../models/scenes.safetensors");
const MANIFEST: &str = include_str!("../models/models.json");

/// The training settings and held-out accuracy of a committed model.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct ModelCard {
    /// The settings the model was trained with.
    pub config: TrainConfig,
    /// Accuracy on held-out scenes rendered at 224×224 and resized to the model's resolution.
    pub heldout_accuracy: f32,
    /// How many held-out scenes that accuracy was measured on.
    pub heldout_scenes: usize,
    /// Seconds the training took on the machine that made it.
    pub train_seconds: f64,
}

/// The card of the committed model for `task`.
pub fn card(task: Task) -> Result<ModelCard, TestWorldError> {
    let cards: std::collections::BTreeMap<String, ModelCard> = serde_json::from_str(MANIFEST)
        .map_err(|e| TestWorldError::Parameter {
            name: "models.json",
            reason: format!("the built-in model manifest is malformed: {e}"),
        })?;
    cards
        .get(task.name())
        .cloned()
        .ok_or_else(|| TestWorldError::Parameter {
            name: "task",
            reason: format!("no built-in model for `{}`", task.name()),
        })
}

/// The committed model for `task`, on the CPU, with the task's class names and input spec.
///
/// ```
/// use xai_models::Backbone;
/// use xai_testworld::{pretrained, Task};
/// let model = pretrained::model(Task::Objects)?;
/// assert_eq!(model.labels().name(0), "goldfish");
/// # Ok::<(), xai_testworld::TestWorldError>(())
/// ```
pub fn model(task: Task) -> Result<ResNet, TestWorldError> {
    model_on(task, &Device::Cpu)
}

/// The committed weights of the model for `task`, as a [`xai_models::WeightsFile`] (named
/// tensors in torchvision's layout), e.g. to re-initialise some layers.
pub fn weights(task: Task) -> Result<xai_models::WeightsFile, TestWorldError> {
    let bytes = match task {
        Task::Objects => OBJECTS,
        Task::Scenes => SCENES,
    };
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?;
    Ok(xai_models::WeightsFile::from_tensors(
        format!("<built-in testworld {}>", task.name()),
        tensors,
    ))
}

/// As [`model`], on `device`.
pub fn model_on(task: Task, device: &Device) -> Result<ResNet, TestWorldError> {
    let bytes = match task {
        Task::Objects => OBJECTS,
        Task::Scenes => SCENES,
    };
    let tensors = candle_core::safetensors::load_buffer(bytes, device)?;
    let card = card(task)?;
    let origin = format!("<built-in testworld {}>", task.name());
    train::model_from_tensors(tensors, task, card.config.input_spec(), &origin, device)
}
