//! Where weights come from: safetensors, PyTorch `.pth`/`.pth.tar` (zip and legacy formats),
//! TorchScript archives (`torch.jit.save`, as OpenAI's CLIP `.pt` files), the local Hugging
//! Face cache, and (with the `hub` feature) the hub itself.
//!
//! Reading a PyTorch file never executes code: the pickle stream is interpreted by candle's
//! reader (zip format), by [`legacy`] (the pre-1.6 format of e.g. the Places365 checkpoints)
//! or by [`torchscript`] (which walks the pickled module's attributes), and only tensors are
//! taken from it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

mod legacy;
mod torchscript;

/// Keys under which training checkpoints commonly nest their state dict.
const WRAPPER_KEYS: [&str; 3] = ["state_dict", "model", "model_state_dict"];

/// The tensors of a weights file, by name, with DataParallel's `module.` prefixes removed.
#[derive(Debug)]
pub struct WeightsFile {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
}

/// The container format of a weights file, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WeightsFormat {
    /// Hugging Face safetensors.
    Safetensors,
    /// PyTorch ≥ 1.6 `torch.save` (a zip archive holding `data.pkl`), or a TorchScript
    /// archive of `torch.jit.save` (the same container; told apart when the file is read).
    TorchZip,
    /// PyTorch < 1.6 `torch.save` (pickle streams followed by raw storages).
    TorchLegacy,
}

impl WeightsFormat {
    /// Detects the format of the file at `path` from its first bytes.
    pub fn detect(path: &Path) -> Result<Self> {
        use std::io::Read;
        let mut head = [0u8; 16];
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let n = file.read(&mut head).map_err(|e| Error::io(path, e))?;
        let head = &head[..n];
        if n == 0 {
            return Err(Error::WeightsFormat {
                path: path.into(),
                reason: "the file is empty".into(),
            });
        }
        if head.starts_with(b"PK\x03\x04") {
            return Ok(Self::TorchZip);
        }
        if head.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) {
            return Ok(Self::TorchLegacy);
        }
        if n >= 9 && head[8] == b'{' {
            return Ok(Self::Safetensors);
        }
        Err(Error::WeightsFormat {
            path: path.into(),
            reason: "not a safetensors file nor a PyTorch checkpoint (zip or legacy format)".into(),
        })
    }
}

impl WeightsFile {
    /// Reads every tensor of a `.safetensors`, `.pth`, `.pt` or `.pth.tar` file onto `device`,
    /// as f32.
    ///
    /// A TorchScript archive (`torch.jit.save`, such as OpenAI's `~/.cache/clip/RN50.pt`)
    /// gives its module's parameters and buffers under their `state_dict()` names.
    /// Checkpoints that nest the weights under `state_dict` (or `model`) are unwrapped, and
    /// the `module.` prefix that `DataParallel` adds is removed.
    pub fn open(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "weights file not found"),
            ));
        }
        let format_err = |e: candle_core::Error| Error::WeightsFormat {
            path: path.into(),
            reason: e.to_string(),
        };
        let raw: Vec<(String, Tensor)> = match WeightsFormat::detect(path)? {
            WeightsFormat::Safetensors => candle_core::safetensors::load(path, &Device::Cpu)
                .map_err(format_err)?
                .into_iter()
                .collect(),
            WeightsFormat::TorchZip => match torchscript::read(path)? {
                Some(tensors) => tensors,
                None => read_torch_save_zip(path).map_err(format_err)?,
            },
            WeightsFormat::TorchLegacy => legacy::read(path, &WRAPPER_KEYS)?,
        };
        if raw.is_empty() {
            return Err(Error::WeightsFormat {
                path: path.into(),
                reason: "the file holds no tensors".into(),
            });
        }
        let mut tensors = HashMap::with_capacity(raw.len());
        for (name, t) in raw {
            let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
            let t = if t.dtype() == DType::F32 || !t.dtype().is_float() {
                t
            } else {
                t.to_dtype(DType::F32)?
            };
            tensors.insert(name, t.to_device(device)?);
        }
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// Builds a set of weights from named tensors (e.g. made in memory, or read elsewhere).
    pub fn from_tensors(path: impl Into<PathBuf>, tensors: HashMap<String, Tensor>) -> Self {
        Self {
            path: path.into(),
            tensors,
        }
    }

    /// The file the tensors came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// A copy in which every tensor whose name starts with one of `prefixes` (e.g. `fc.`,
    /// `layer4.`) is replaced by seeded random values of the same shape: He-uniform for
    /// weights of rank ≥ 2, `0.5 + U(0,1)` for batch-norm scales and running variances,
    /// `0.1·(U(0,1) − 0.5)` for other vectors. This is the re-initialisation of Adebayo et al.'s
    /// model-randomisation sanity check. Returns the copy and how many tensors were replaced.
    ///
    /// ```
    /// use xai_models::testing::random_resnet_tensors;
    /// use xai_models::{ResNetConfig, WeightsFile};
    /// let config = ResNetConfig::resnet18().with_width(4).with_classes(3);
    /// let file = WeightsFile::from_tensors("tiny", random_resnet_tensors(&config, 0)?);
    /// let (randomised, n) = file.randomised(&["fc."], 7)?;
    /// assert_eq!(n, 2); // fc.weight and fc.bias
    /// assert_ne!(
    ///     randomised.get("fc.weight").unwrap().to_vec2::<f32>()?,
    ///     file.get("fc.weight").unwrap().to_vec2::<f32>()?,
    /// );
    /// # Ok::<(), xai_models::Error>(())
    /// ```
    pub fn randomised(&self, prefixes: &[&str], seed: u64) -> Result<(WeightsFile, usize)> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut tensors = self.tensors.clone();
        let mut replaced = 0;
        // Sorted, so the same seed gives the same values whatever the map's order.
        for name in self.names() {
            if !prefixes.iter().any(|p| name.starts_with(p))
                || name.ends_with("num_batches_tracked")
            {
                continue;
            }
            let old = &self.tensors[name];
            let shape = old.dims().to_vec();
            let n: usize = shape.iter().product();
            let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
            let bound = (6.0 / fan_in as f32).sqrt();
            let scale_like = name.ends_with("running_var")
                || (shape.len() == 1 && name.ends_with(".weight") && !name.starts_with("fc"));
            let data: Vec<f32> = (0..n)
                .map(|_| {
                    let u = rng.random::<f32>();
                    if shape.len() >= 2 {
                        (2.0 * u - 1.0) * bound
                    } else if scale_like {
                        0.5 + u
                    } else {
                        0.1 * (u - 0.5)
                    }
                })
                .collect();
            let t = Tensor::from_vec(data, shape, old.device())?.to_dtype(old.dtype())?;
            tensors.insert(name.to_string(), t);
            replaced += 1;
        }
        Ok((
            WeightsFile {
                path: self.path.clone(),
                tensors,
            },
            replaced,
        ))
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// A checked view for building architecture `arch`: it records missing and mis-shaped
    /// tensors, so that one error can name them all.
    pub fn checkout(&self, arch: &str) -> Checkout<'_> {
        Checkout {
            file: self,
            arch: arch.to_string(),
            used: BTreeSet::new(),
            missing: Vec::new(),
            shape_error: None,
        }
    }
}

/// The tensors of a `torch.save` zip checkpoint through candle's reader: the top-level dict,
/// else the first of [`WRAPPER_KEYS`] that holds tensors (empty if none does). Only the
/// top-level read's error is reported; a wrapper key that is absent is not an error.
fn read_torch_save_zip(path: &Path) -> candle_core::Result<Vec<(String, Tensor)>> {
    for key in std::iter::once(None).chain(WRAPPER_KEYS.iter().map(Some)) {
        match candle_core::pickle::read_all_with_key(path, key.copied()) {
            Ok(t) if !t.is_empty() => return Ok(t),
            Ok(_) => {}
            Err(e) if key.is_none() => return Err(e),
            Err(_) => {}
        }
    }
    Ok(Vec::new())
}

/// Takes tensors out of a [`WeightsFile`] for one architecture, checking names and shapes.
#[derive(Debug)]
pub struct Checkout<'a> {
    file: &'a WeightsFile,
    arch: String,
    used: BTreeSet<String>,
    missing: Vec<String>,
    shape_error: Option<Error>,
}

impl Checkout<'_> {
    /// The tensor `name` with shape `shape`; records the problem and returns a placeholder
    /// when it is missing or mis-shaped (call [`finish`](Checkout::finish) to get the error).
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.used.insert(name.to_string());
        match self.file.get(name) {
            Some(t) if t.dims() == shape => Ok(t.clone()),
            Some(t) => {
                if self.shape_error.is_none() {
                    self.shape_error = Some(Error::TensorShape {
                        path: self.file.path.clone(),
                        arch: self.arch.clone(),
                        name: name.to_string(),
                        expected: shape.into(),
                        actual: t.dims().into(),
                    });
                }
                Ok(Tensor::zeros(shape, DType::F32, t.device())?)
            }
            None => {
                self.missing.push(name.to_string());
                Ok(Tensor::zeros(shape, DType::F32, &Device::Cpu)?)
            }
        }
    }

    /// The shape of tensor `name`, if present (used to read e.g. the number of classes).
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.file.get(name).map(|t| t.dims().to_vec())
    }

    /// Ends the checkout: an error naming every missing tensor, then the first mis-shaped
    /// one, then every unexpected one (names matching `ignore` are never unexpected).
    pub fn finish(self, ignore: &[&str], hint: Option<String>) -> Result<()> {
        if !self.missing.is_empty() {
            return Err(Error::MissingTensors {
                path: self.file.path.clone(),
                arch: self.arch,
                missing: self.missing,
                hint,
            });
        }
        if let Some(e) = self.shape_error {
            return Err(e);
        }
        let unexpected: Vec<String> = self
            .file
            .names()
            .into_iter()
            .filter(|n| !self.used.contains(*n) && !ignore.iter().any(|i| n.ends_with(i)))
            .map(str::to_string)
            .collect();
        if !unexpected.is_empty() {
            return Err(Error::UnexpectedTensors {
                path: self.file.path.clone(),
                arch: self.arch,
                unexpected,
                hint,
            });
        }
        Ok(())
    }
}
