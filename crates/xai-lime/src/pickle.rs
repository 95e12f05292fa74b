//! A Python pickle of plain data, so results can be read with `pickle.load` (the seed task
//! hands in its LIME parameters as `lime_parameters.pkl`).
//!
//! Protocol 2, built from a JSON value: objects become `dict`s,
//! arrays `list`s, numbers `int` or `float`, strings `str`, booleans `bool`, null `None`.
//! Nothing but these opcodes is written, so loading it runs no code.

use serde_json::Value;

use crate::{Error, Result};

const PROTO: u8 = 0x80;
const STOP: u8 = b'.';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const BINUNICODE: u8 = b'X';
const EMPTY_DICT: u8 = b'}';
const EMPTY_LIST: u8 = b']';
const MARK: u8 = b'(';
const SETITEMS: u8 = b'u';
const APPENDS: u8 = b'e';

/// Serialises `value` as a protocol-2 pickle.
///
/// ```
/// let bytes = xai_lime::pickle::to_pickle(&serde_json::json!({"num_samples": 1000}))?;
/// assert_eq!(bytes[..2], [0x80, 2]);
/// assert_eq!(*bytes.last().unwrap(), b'.');
/// # Ok::<(), xai_lime::Error>(())
/// ```
pub fn to_pickle(value: &Value) -> Result<Vec<u8>> {
    let mut out = vec![PROTO, 2];
    write_value(&mut out, value)?;
    out.push(STOP);
    Ok(out)
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u32::try_from(s.len())
        .map_err(|_| Error::Data("a string longer than 4 GiB cannot be pickled".into()))?;
    out.push(BINUNICODE);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_int(out: &mut Vec<u8>, v: i128) {
    if let Ok(small) = i32::try_from(v) {
        out.push(BININT);
        out.extend_from_slice(&small.to_le_bytes());
    } else {
        // Two's complement, little endian, as short as the sign allows.
        let bytes = v.to_le_bytes();
        let mut n = bytes.len();
        while n > 1 {
            let top = bytes[n - 1];
            let next_sign = bytes[n - 2] & 0x80;
            if (top == 0 && next_sign == 0) || (top == 0xff && next_sign != 0) {
                n -= 1;
            } else {
                break;
            }
        }
        out.push(LONG1);
        out.push(n as u8);
        out.extend_from_slice(&bytes[..n]);
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<()> {
    match value {
        Value::Null => out.push(NONE),
        Value::Bool(b) => out.push(if *b { NEWTRUE } else { NEWFALSE }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write_int(out, i128::from(i));
            } else if let Some(u) = n.as_u64() {
                write_int(out, i128::from(u));
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                out.push(BINFLOAT);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::String(s) => write_str(out, s)?,
        Value::Array(items) => {
            out.push(EMPTY_LIST);
            if !items.is_empty() {
                out.push(MARK);
                for item in items {
                    write_value(out, item)?;
                }
                out.push(APPENDS);
            }
        }
        Value::Object(map) => {
            out.push(EMPTY_DICT);
            if !map.is_empty() {
                out.push(MARK);
                for (k, v) in map {
                    write_str(out, k)?;
                    write_value(out, v)?;
                }
                out.push(SETITEMS);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_bytes() {
        // pickle.dumps({'a': 1, 'b': [True, None], 'c': 0.5}, protocol=2) with
        // memoisation left out (pickle's own output adds BINPUT opcodes).
        let v = serde_json::json!({"a": 1, "b": [true, null], "c": 0.5});
        let bytes = to_pickle(&v).unwrap();
        let mut want = vec![0x80, 2, b'}', b'('];
        want.extend([b'X', 1, 0, 0, 0, b'a', b'J', 1, 0, 0, 0]);
        want.extend([b'X', 1, 0, 0, 0, b'b', b']', b'(', 0x88, b'N', b'e']);
        want.extend([b'X', 1, 0, 0, 0, b'c', b'G']);
        want.extend(0.5f64.to_be_bytes());
        want.extend([b'u', b'.']);
        assert_eq!(bytes, want);
    }

    #[test]
    fn big_integers_use_long1() {
        let bytes = to_pickle(&serde_json::json!(1u64 << 40)).unwrap();
        assert_eq!(&bytes[2..10], &[LONG1, 6, 0, 0, 0, 0, 0, 1]);
        let bytes = to_pickle(&serde_json::json!(-(1i64 << 40))).unwrap();
        assert_eq!(&bytes[2..10], &[LONG1, 6, 0, 0, 0, 0, 0, 0xff]);
    }
}
