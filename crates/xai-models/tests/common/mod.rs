//! Fixture helpers shared by the parity tests: paths under `testdata/` and `.npy` files read
//! as CPU tensors. Each test binary uses only some of them.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use ndarray_npy::{ReadNpyExt, ReadableElement};

/// A folder of fixtures below the repository's `testdata/`.
pub(crate) struct Fixtures(pub(crate) &'static str);

impl Fixtures {
    /// The path of `rel` in this folder.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata")
            .join(self.0)
            .join(rel)
    }

    /// An `f32` `.npy` file as a tensor of its shape.
    pub(crate) fn f32(&self, rel: &str) -> Tensor {
        self.npy::<f32>(rel)
    }

    /// An `i64` `.npy` file (token ids) as a tensor of its shape.
    pub(crate) fn i64(&self, rel: &str) -> Tensor {
        self.npy::<i64>(rel)
    }

    fn npy<T: ReadableElement + candle_core::WithDType>(&self, rel: &str) -> Tensor {
        let path = self.path(rel);
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let a = ndarray::ArrayD::<T>::read_npy(file)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let shape = a.shape().to_vec();
        Tensor::from_vec(a.iter().copied().collect::<Vec<_>>(), shape, &Device::Cpu).unwrap()
    }
}

/// The largest magnitude of an `f32` tensor.
pub(crate) fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
