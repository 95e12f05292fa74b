//! The error type of `xai-lime`.

use std::path::PathBuf;

/// Everything that can go wrong while segmenting, explaining or searching parameters.
///
/// Parameter errors (a bad setting) are kept apart from errors of the data (an image or
/// label map that does not fit), of the model run and of file output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An invalid setting or argument.
    #[error("invalid parameter `{name}`: {reason}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Why the value is not accepted.
        reason: String,
    },

    /// An array whose shape does not fit.
    #[error("{what} has shape {actual:?}, expected {expected}")]
    Shape {
        /// What was checked.
        what: String,
        /// The shape that was found.
        actual: Vec<usize>,
        /// A description of the shapes accepted.
        expected: String,
    },

    /// Input data that cannot be used (NaN pixels, an empty image, too few superpixels).
    #[error("{0}")]
    Data(String),

    /// A label that the explanation does not hold.
    #[error("label {label} was not explained; explained labels: {explained:?}")]
    UnknownLabel {
        /// The label asked for.
        label: usize,
        /// The labels the explanation has.
        explained: Vec<usize>,
    },

    /// The classifier returned something unusable (wrong shape, NaN scores).
    #[error("classifier: {0}")]
    Classifier(String),

    /// An error from the model (running it, scoring its output).
    #[error(transparent)]
    Model(#[from] xai_models::Error),

    /// An error inside candle (tensor shapes, devices, kernels).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A file that could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The result type of `xai-lime`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Parameter {
            name,
            reason: reason.into(),
        }
    }
}
