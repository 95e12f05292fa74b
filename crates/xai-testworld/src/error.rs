//! The error type of `xai-testworld`.

use std::path::PathBuf;

use crate::scene::SceneError;

/// Everything that can go wrong while generating, training, exporting or evaluating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestWorldError {
    /// A scene could not be generated (bad configuration, unknown kind name).
    #[error(transparent)]
    Scene(#[from] SceneError),
    /// An invalid parameter.
    #[error("invalid parameter `{name}`: {reason}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Why the value is not accepted.
        reason: String,
    },
    /// A model error (loading, running).
    #[error(transparent)]
    Model(#[from] xai_models::Error),
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<candle_core::Error> for TestWorldError {
    fn from(e: candle_core::Error) -> Self {
        Self::Model(e.into())
    }
}
