//! The legacy (PyTorch < 1.6) `torch.save` format, as used by the Places365 checkpoints.
//!
//! Layout: five pickle streams (magic number, protocol version, system info, the saved object,
//! the list of storage keys), then each storage as an 8-byte little-endian element count
//! followed by its raw little-endian bytes. Tensors inside the saved object refer to storages
//! through persistent ids `('storage', StorageType, key, location, numel, view)`.
//! candle's pickle interpreter reads each stream; this module only wires them together.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Shape, Tensor};

use crate::{Error, Result};

/// `0x1950a86a20f9469cfc6c` pickled as a LONG1 at protocol 2, then STOP.
const MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
];

pub(super) struct StorageRef {
    pub(super) dtype: DType,
    pub(super) numel: usize,
}

impl StorageRef {
    /// The storage's elements as a flat CPU tensor, read from its raw little-endian bytes;
    /// `None` when `raw` holds fewer elements than the pickle says (a truncated file).
    pub(super) fn flat(&self, raw: &[u8]) -> Result<Option<Tensor>> {
        let size = self.dtype.size_in_bytes();
        let numel = raw.len() / size;
        if numel < self.numel {
            return Ok(None);
        }
        let bytes = &raw[..numel * size];
        Ok(Some(Tensor::from_raw_buffer(
            bytes,
            self.dtype,
            &[numel],
            &Device::Cpu,
        )?))
    }
}

pub(super) struct TensorRef {
    pub(super) key: String,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

pub(super) fn read(path: &Path, wrapper_keys: &[&str]) -> Result<Vec<(String, Tensor)>> {
    let bad = |reason: String| Error::WeightsFormat {
        path: path.into(),
        reason: format!("legacy PyTorch format: {reason}"),
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !bytes.starts_with(&MAGIC) {
        return Err(bad("bad magic number".into()));
    }
    let mut reader = std::io::Cursor::new(&bytes[MAGIC.len()..]);
    let mut next_pickle = |what: &str| -> Result<Object> {
        let mut stack = Stack::empty();
        stack
            .read_loop(&mut reader)
            .and_then(|()| stack.finalize())
            .map_err(|e| bad(format!("cannot read the {what}: {e}")))
    };
    let _protocol = next_pickle("protocol version")?;
    let sys_info = next_pickle("system info")?;
    if let Object::Dict(items) = &sys_info {
        let big_endian = items.iter().any(|(k, v)| {
            *k == Object::Unicode("little_endian".into()) && *v == Object::Bool(false)
        });
        if big_endian {
            return Err(bad("big-endian checkpoints are not supported".into()));
        }
    }
    let root = next_pickle("saved object")?;
    let keys = next_pickle("storage keys")?;
    let keys: Vec<String> = match keys {
        Object::List(items) | Object::Tuple(items) => items
            .into_iter()
            .map(|k| String::try_from(k).map_err(|_| bad("a storage key is not a string".into())))
            .collect::<Result<_>>()?,
        _ => return Err(bad("the storage key list is not a list".into())),
    };

    let dict = unwrap_state_dict(root, wrapper_keys)
        .ok_or_else(|| bad("the saved object holds no dict of tensors".into()))?;
    let mut storages: HashMap<String, StorageRef> = HashMap::new();
    let mut tensors = Vec::new();
    for (name, value) in dict {
        let (Object::Unicode(name), Some(t)) = (name, tensor_ref(value, &mut storages)) else {
            continue;
        };
        tensors.push((name, t));
    }

    // The storages follow the pickles, in the order of the key list.

    let mut data: HashMap<String, Vec<u8>> = HashMap::new();
    for key in keys {
        let mut count = [0u8; 8];
        reader
            .read_exact(&mut count)
            .map_err(|_| bad(format!("the file ends before storage {key}")))?;
        let count = u64::from_le_bytes(count) as usize;
        let elem = storages
            .get(&key)
            .map(|s| s.dtype.size_in_bytes())
            .unwrap_or(1);
        let len = count
            .checked_mul(elem)
            .ok_or_else(|| bad(format!("storage {key} is too large")))?;
        let available = reader.get_ref().len() - reader.position() as usize;
        if len > available {
            return Err(bad(format!(
                "storage {key} needs {len} bytes but only {available} remain"
            )));
        }
        let start = reader.position() as usize;
        data.insert(key, reader.get_ref()[start..start + len].to_vec());
        reader.consume(len);
    }

    let mut out = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let storage = &storages[&t.key];
        let raw = data
            .get(&t.key)
            .ok_or_else(|| bad(format!("tensor {name} refers to missing storage {}", t.key)))?;
        let flat = storage
            .flat(raw)?
            .ok_or_else(|| bad(format!("storage {} is truncated", t.key)))?;
        out.push((name, strided_view(&flat, &t)?));
    }
    Ok(out)
}

/// The dict of tensors: the root itself, or the value of the first wrapper key holding one.
fn unwrap_state_dict(root: Object, wrapper_keys: &[&str]) -> Option<Vec<(Object, Object)>> {
    let Object::Dict(items) = root else {
        return None;
    };
    for key in wrapper_keys {
        if let Some((_, Object::Dict(inner))) = items
            .iter()
            .find(|(k, _)| *k == Object::Unicode((*key).to_string()))
        {
            return Some(inner.clone());
        }
    }
    Some(items)
}

pub(super) fn tensor_ref(
    value: Object,
    storages: &mut HashMap<String, StorageRef>,
) -> Option<TensorRef> {
    let Object::Reduce { callable, args } = value else {
        return None;
    };
    let Object::Class { class_name, .. } = *callable else {
        return None;
    };
    let args = match (class_name.as_str(), *args) {
        ("_rebuild_parameter", Object::Tuple(mut a)) if !a.is_empty() => {
            return tensor_ref(a.remove(0), storages);
        }
        ("_rebuild_tensor_v2" | "_rebuild_tensor", Object::Tuple(a)) => a,
        _ => return None,
    };
    let mut args = args.into_iter();
    let Object::PersistentLoad(pid) = args.next()? else {
        return None;
    };
    let Object::Tuple(pid) = *pid else {
        return None;
    };
    let mut pid = pid.into_iter();
    if pid.next()? != Object::Unicode("storage".into()) {
        return None;
    }
    let Object::Class { class_name, .. } = pid.next()? else {
        return None;
    };
    let dtype = storage_dtype(&class_name)?;
    let key = String::try_from(pid.next()?).ok()?;
    let _location = pid.next()?;
    let numel = as_usize(pid.next()?)?;
    storages.insert(key.clone(), StorageRef { dtype, numel });
    let offset = as_usize(args.next()?)?;
    let size = usize_tuple(args.next()?)?;
    let stride = usize_tuple(args.next()?)?;
    Some(TensorRef {
        key,
        offset,
        size,
        stride,
    })
}

fn storage_dtype(class_name: &str) -> Option<DType> {
    Some(match class_name {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "IntStorage" => DType::I32,
        "ByteStorage" => DType::U8,
        _ => return None,
    })
}

fn as_usize(o: Object) -> Option<usize> {
    match o {
        Object::Int(i) if i >= 0 => Some(i as usize),
        Object::Long(i) if i >= 0 => Some(i as usize),
        _ => None,
    }
}

fn usize_tuple(o: Object) -> Option<Vec<usize>> {
    match o {
        Object::Tuple(items) => items.into_iter().map(as_usize).collect(),
        _ => None,
    }
}

/// Gathers `t`'s elements out of the flat storage following its size and stride.
pub(super) fn strided_view(flat: &Tensor, t: &TensorRef) -> Result<Tensor> {
    let numel: usize = t.size.iter().product();
    let contiguous_strides: Vec<usize> = {
        let mut s = vec![1usize; t.size.len()];
        for i in (0..t.size.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * t.size[i + 1];
        }
        s
    };
    let storage_len = flat.dims1()?;
    if numel == 0 {
        return Ok(Tensor::zeros(
            Shape::from(t.size.clone()),
            flat.dtype(),
            flat.device(),
        )?);
    }
    let last = t.offset
        + t.size
            .iter()
            .zip(&t.stride)
            .map(|(n, s)| (n - 1) * s)
            .sum::<usize>();
    if last >= storage_len {
        return Err(Error::WeightsFormat {
            path: Default::default(),
            reason: format!("a tensor reaches past its storage ({last} >= {storage_len})"),
        });
    }
    if t.stride == contiguous_strides {
        return Ok(flat.narrow(0, t.offset, numel)?.reshape(t.size.clone())?);
    }
    let mut index = Vec::with_capacity(numel);
    let mut pos = vec![0usize; t.size.len()];
    for _ in 0..numel {
        index
            .push((t.offset + pos.iter().zip(&t.stride).map(|(p, s)| p * s).sum::<usize>()) as u32);
        for d in (0..pos.len()).rev() {
            pos[d] += 1;
            if pos[d] < t.size[d] {
                break;
            }
            pos[d] = 0;
        }
    }
    let index = Tensor::new(index.as_slice(), flat.device())?;
    Ok(flat.index_select(&index, 0)?.reshape(t.size.clone())?)
}
