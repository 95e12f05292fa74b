//! The error type of `xai-metrics`.

/// Everything that can go wrong while computing a metric.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An invalid parameter (a percentile outside 0–100, a step of zero, NaN in a map…).
    #[error("invalid parameter `{name}`: {reason}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Why the value is not accepted and what would be.
        reason: String,
    },
    /// Two inputs whose shapes must agree do not, or an input has the wrong rank.
    #[error("{what}: shape {actual:?}, expected {expected}")]
    Shape {
        /// Which input.
        what: String,
        /// The shape given.
        actual: Vec<usize>,
        /// The shape wanted.
        expected: String,
    },
    /// ROAD's imputation was asked to fill every pixel: no region touches a known pixel, so the
    /// linear system is singular (the reference returns NaN or huge values here).
    #[error(
        "ROAD imputation: all {pixels} pixels are to be imputed, so no region has a known \
         neighbour and the system is singular; choose a percentile that keeps some pixels"
    )]
    NothingKnown {
        /// The number of pixels.
        pixels: usize,
    },
    /// The conjugate-gradient solve of ROAD's imputation did not reach its tolerance.
    #[error(
        "ROAD imputation: conjugate gradient stopped after {iterations} iterations at relative \
         residual {residual:e}; raise max_iterations or the tolerance"
    )]
    NotConverged {
        /// Iterations run.
        iterations: usize,
        /// The relative residual reached.
        residual: f64,
    },
    /// A model error (running the model, scoring its output).
    #[error(transparent)]
    Model(#[from] xai_models::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Self::Model(e.into())
    }
}

impl Error {
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Parameter {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn shape(
        what: impl Into<String>,
        actual: &[usize],
        expected: impl Into<String>,
    ) -> Self {
        Self::Shape {
            what: what.into(),
            actual: actual.to_vec(),
            expected: expected.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Refuses maps holding NaN or infinities, naming `what`.
pub(crate) fn check_finite<'a>(
    what: &'static str,
    values: impl IntoIterator<Item = &'a f32>,
) -> Result<()> {
    if values.into_iter().any(|v| !v.is_finite()) {
        return Err(Error::param(
            what,
            "the map contains NaN or infinite values; replace them (e.g. with 0) first",
        ));
    }
    Ok(())
}
