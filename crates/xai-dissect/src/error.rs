//! The error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in a dissection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is out of range or inconsistent with the data.
    #[error("invalid parameter `{name}`: {reason}")]
    Parameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Two inputs that must agree in shape do not.
    #[error("{what} has shape {actual:?}, expected {expected}")]
    Shape {
        /// Which input.
        what: String,
        /// Its shape.
        actual: Vec<usize>,
        /// What was expected.
        expected: String,
    },
    /// An input holds a value no similarity is defined for (NaN, infinity).
    #[error("{0}")]
    NonFinite(String),
    /// A file could not be read or written, or holds something unexpected.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An error of the model.
    #[error(transparent)]
    Model(#[from] xai_models::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Self::Model(e.into())
    }
}

impl Error {
    pub(crate) fn file(path: &std::path::Path, reason: impl ToString) -> Self {
        Self::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// The result type of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
