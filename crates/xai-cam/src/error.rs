//! The error type of `xai-cam`.

use std::path::PathBuf;

/// Everything that can go wrong while computing, rendering or saving a class activation map.
///
/// Parameter errors (a bad setting, an unknown layer or method) are kept apart from the
/// errors of the model run itself ([`Error::Model`], [`Error::Candle`]) and of file output.
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

    /// A layer that exists but cannot be explained by a CAM (e.g. a vector layer such as `fc`).
    #[error("layer `{name}` has no spatial layout (a CAM needs a (batch, channels, height, width) activation); spatial layers are: {}", spatial.join(", "))]
    NotSpatial {
        /// The layer that was asked for.
        name: String,
        /// The layers that a CAM can use.
        spatial: Vec<String>,
    },

    /// A method name that xai-cam does not know.
    #[error("unknown CAM method `{name}`; known: {}", known.join(", "))]
    UnknownMethod {
        /// The name that was asked for.
        name: String,
        /// Every method name accepted.
        known: Vec<String>,
    },

    /// An invalid setting or argument.
    #[error("invalid parameter `{name}`: {reason}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Why the value is not accepted.
        reason: String,
    },

    /// A tensor or array whose shape does not fit.
    #[error("{what} has shape {actual:?}, expected {expected}")]
    Shape {
        /// What was checked.
        what: String,
        /// The shape that was found.
        actual: Vec<usize>,
        /// A description of the shapes accepted.
        expected: String,
    },

    /// An error from the model (running it, scoring its output with a target).
    #[error(transparent)]
    Model(#[from] xai_models::Error),

    /// An error inside candle (tensor shapes, devices, kernels).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A file that could not be written.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file involved.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The result type of `xai-cam`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Parameter {
            name,
            reason: reason.into(),
        }
    }
}
