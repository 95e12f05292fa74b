//! The error type of `xai-models`.

use std::path::PathBuf;

/// Everything that can go wrong while loading, preprocessing or running a model.
///
/// Each variant carries the context a user needs to fix the problem: the file path, the
/// layer name and the valid names, the expected and actual shapes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layer name that the backbone does not have.
    #[error("unknown layer `{name}`; valid layers are: {}", valid.join(", "))]
    UnknownLayer {
        /// The name that was asked for.
        name: String,
        /// Every name the backbone accepts, in execution order.
        valid: Vec<String>,
    },

    /// A weights file that is missing tensors the architecture needs.
    #[error("weights file {path} does not fit {arch}: missing tensor(s) {}{}", list_head(missing), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingTensors {
        /// The weights file.
        path: PathBuf,
        /// The architecture the file was loaded as.
        arch: String,
        /// Names of the tensors that were expected and not found.
        missing: Vec<String>,
        /// A guess at what went wrong, e.g. another architecture.
        hint: Option<String>,
    },

    /// A weights file that has tensors the architecture does not know.
    #[error("weights file {path} does not fit {arch}: unexpected tensor(s) {}{}", list_head(unexpected), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnexpectedTensors {
        /// The weights file.
        path: PathBuf,
        /// The architecture the file was loaded as.
        arch: String,
        /// Names of the tensors that the architecture does not use.
        unexpected: Vec<String>,
        /// A guess at what went wrong, e.g. another architecture.
        hint: Option<String>,
    },

    /// A tensor whose shape is not the one the architecture expects.
    #[error("weights file {path} does not fit {arch}: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        /// The weights file.
        path: PathBuf,
        /// The architecture the file was loaded as.
        arch: String,
        /// The tensor's name.
        name: String,
        /// The shape the architecture needs.
        expected: Box<[usize]>,
        /// The shape found in the file.
        actual: Box<[usize]>,
    },

    /// A weights file that could not be parsed at all.
    #[error("cannot read weights file {path}: {reason}")]
    WeightsFormat {
        /// The weights file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },

    /// No weights could be found for an architecture.
    #[error("no weights found for `{arch}`; looked in: {}. {hint}", looked.join("; "))]
    WeightsNotFound {
        /// The architecture asked for.
        arch: String,
        /// Every place that was searched, in order.
        looked: Vec<String>,
        /// How to supply weights.
        hint: String,
    },

    /// An architecture name that xai does not know.
    #[error("unknown architecture `{name}`; known: {}", known.join(", "))]
    UnknownArch {
        /// The name that was asked for.
        name: String,
        /// The names xai knows.
        known: Vec<String>,
    },

    /// A checkpoint that is another architecture than the one asked for.
    #[error("weights file {path} holds {found}, not the {requested} that was asked for; name the architecture the file holds, or use a {requested} checkpoint")]
    ArchMismatch {
        /// The weights file.
        path: PathBuf,
        /// The architecture that was asked for.
        requested: String,
        /// What the file holds.
        found: String,
    },

    /// An image that could not be read or decoded.
    #[error("cannot read image {path}: {reason}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// An input tensor (e.g. from a `.npy` file) with a shape that does not fit.
    #[error("input {what} has shape {actual:?}, expected {expected}")]
    InputShape {
        /// What the input was (a path or a description).
        what: String,
        /// The shape that was found.
        actual: Vec<usize>,
        /// A description of the shapes accepted.
        expected: String,
    },

    /// A value in the input that cannot be used (NaN, infinity, ...).
    #[error("invalid input {what}: {reason}")]
    InvalidInput {
        /// What the input was.
        what: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// A label file that could not be parsed.
    #[error("cannot read labels from {path}: {reason}")]
    Labels {
        /// The label file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// An invalid parameter passed to a constructor or method.
    #[error("invalid parameter `{name}`: {reason}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Why the value is not accepted.
        reason: String,
    },

    /// A CLIP merges (vocabulary) file that could not be read.
    #[error("cannot read CLIP merges file {path}: {reason}")]
    Tokenizer {
        /// The merges file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A text whose tokens do not fit CLIP's context.
    #[error("text \"{text}…\" is {tokens} tokens with start and end, more than the context of {context}; shorten it or tokenize with truncation")]
    TextTooLong {
        /// The start of the text.
        text: String,
        /// Its number of tokens, start and end included.
        tokens: usize,
        /// The context length.
        context: usize,
    },

    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An error inside candle (tensor shapes, devices, kernels).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The result type of `xai-models`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

fn list_head(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}
