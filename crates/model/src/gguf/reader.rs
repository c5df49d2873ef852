//! The GGUF container: header, metadata key/values and tensor infos (versions 2 and 3, little-endian).
//!
//! Only the header is read eagerly; tensor data stays on disk until [`GgufFile::tensor_data`] asks for it, so
//! opening a multi-gigabyte file to look at its metadata is cheap.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use super::dequant::GgmlType;

/// `GGUF` in little-endian byte order.
const MAGIC: u32 = 0x4655_4747;
/// Alignment of the tensor data section when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// Upper bound on one string's length; a corrupt length must not become a huge allocation.
const MAX_STRING_BYTES: u64 = 1 << 28;

/// One metadata value, typed as the file declares it.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `float32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// UTF-8 `string`.
    String(String),
    /// Homogeneous `array` of any other type (nested arrays allowed).
    Array(Vec<MetadataValue>),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float64`.
    F64(f64),
}

impl MetadataValue {
    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is any number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            Self::I8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if the value is an array.
    pub fn as_array(&self) -> Option<&[MetadataValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Where one tensor lives in the file and how it is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// llama.cpp name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` varies fastest (the reverse of PyTorch's shape).
    pub dims: Vec<u64>,
    /// Element encoding.
    pub dtype: GgmlType,
    /// Byte offset from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn numel(&self) -> u64 {
        self.dims.iter().product()
    }

    /// PyTorch-order shape (slowest-varying dimension first).
    pub fn torch_shape(&self) -> Vec<i64> {
        self.dims.iter().rev().map(|&d| d as i64).collect()
    }

    /// Bytes this tensor occupies in the data section.
    pub fn byte_len(&self) -> Result<u64> {
        self.dtype
            .byte_len(self.numel())
            .with_context(|| format!("tensor {}", self.name))
    }
}

/// An opened GGUF file: all metadata and tensor infos, with tensor data read on demand.
#[derive(Debug, Clone)]
pub struct GgufFile {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata key/values.
    pub metadata: BTreeMap<String, MetadataValue>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Alignment of the data section and of every tensor offset.
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
    path: PathBuf,
}

impl GgufFile {
    /// Reads the header of the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("opening GGUF file {}", path.display()))?;
        let file_len = file.metadata()?.len();
        let mut reader = BufReader::new(file);
        Self::read_header(&mut reader, file_len, path)
            .with_context(|| format!("reading GGUF header of {}", path.display()))
    }

    fn read_header<R: Read + Seek>(r: &mut R, file_len: u64, path: &Path) -> Result<Self> {
        let magic = read_u32(r)?;
        if magic != MAGIC {
            bail!("not a GGUF file (magic {magic:#010x})");
        }
        let version = read_u32(r)?;
        match version {
            2 | 3 => {}
            1 => bail!("GGUF version 1 is not supported (re-convert the model with a current llama.cpp)"),
            v if v.swap_bytes() <= 3 => bail!("big-endian GGUF files are not supported"),
            v => bail!("unsupported GGUF version {v}"),
        }
        let tensor_count = read_u64(r)?;
        let kv_count = read_u64(r)?;
        // Every entry takes at least a few bytes, so a count beyond the file size is corruption.
        ensure!(
            tensor_count <= file_len && kv_count <= file_len,
            "implausible tensor/metadata counts"
        );

        let mut metadata = BTreeMap::new();
        for index in 0..kv_count {
            let key = read_string(r).with_context(|| format!("metadata entry {index}"))?;
            let value_type = read_u32(r)?;
            let value = read_value(r, value_type, file_len, 0).with_context(|| format!("metadata key {key}"))?;
            metadata.insert(key, value);
        }

        let mut tensors = Vec::with_capacity(tensor_count as usize);
        for index in 0..tensor_count {
            let name = read_string(r).with_context(|| format!("tensor info {index}"))?;
            let n_dims = read_u32(r)?;
            ensure!(n_dims <= 8, "tensor {name}: {n_dims} dimensions");
            let dims = (0..n_dims).map(|_| read_u64(r)).collect::<Result<Vec<_>>>()?;
            let dtype = GgmlType::from_id(read_u32(r)?).with_context(|| format!("tensor {name}"))?;
            let offset = read_u64(r)?;
            tensors.push(TensorInfo {
                name,
                dims,
                dtype,
                offset,
            });
        }

        let alignment = match metadata.get("general.alignment") {
            Some(v) => v.as_u64().context("general.alignment is not an integer")?,
            None => DEFAULT_ALIGNMENT,
        };
        ensure!(
            alignment > 0 && alignment.is_power_of_two(),
            "general.alignment {alignment} is not a power of two"
        );
        let header_end = r.stream_position()?;
        let data_offset = header_end.div_ceil(alignment) * alignment;

        for t in &tensors {
            ensure!(
                t.offset % alignment == 0,
                "tensor {}: offset {} not aligned to {alignment}",
                t.name,
                t.offset
            );
            let end = data_offset
                .checked_add(t.offset)
                .and_then(|start| start.checked_add(t.byte_len().ok()?))
                .with_context(|| format!("tensor {}: offset overflow", t.name))?;
            ensure!(
                end <= file_len,
                "tensor {} extends past the end of the file ({end} > {file_len} bytes)",
                t.name
            );
        }
        Ok(Self {
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
            path: path.to_path_buf(),
        })
    }

    /// The file this header was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Metadata value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.metadata.get(key)
    }

    /// String metadata for `key`, or an error naming the key when absent or not a string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get(key)
            .with_context(|| format!("missing metadata key {key}"))?
            .as_str()
            .with_context(|| format!("metadata key {key} is not a string"))
    }

    /// Unsigned integer metadata for `key`, `None` if absent, an error if present with another type.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .with_context(|| format!("metadata key {key} is not an integer"))
            })
            .transpose()
    }

    /// Float metadata for `key`, `None` if absent, an error if present with another type.
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| {
                v.as_f64()
                    .with_context(|| format!("metadata key {key} is not a number"))
            })
            .transpose()
    }

    /// Tensor info by llama.cpp name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Raw bytes of one tensor.
    pub fn tensor_data(&self, info: &TensorInfo) -> Result<Vec<u8>> {
        let mut file = File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.data_offset + info.offset))?;
        let mut bytes = vec![0u8; info.byte_len()? as usize];
        file.read_exact(&mut bytes)
            .with_context(|| format!("reading tensor {} from {}", info.name, self.path.display()))?;
        Ok(bytes)
    }

    /// One tensor's values as f32 (dequantised if needed), in ggml order.
    pub fn tensor_f32(&self, info: &TensorInfo) -> Result<Vec<f32>> {
        let bytes = self.tensor_data(info)?;
        info.dtype
            .dequantize(&bytes, info.numel() as usize)
            .with_context(|| format!("tensor {}", info.name))
    }
}

fn read_bytes<const N: usize, R: Read>(r: &mut R) -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    r.read_exact(&mut buf).context("unexpected end of file")?;
    Ok(buf)
}

fn read_u32<R: Read>(r: &mut R) -> Result<u32> {
    Ok(u32::from_le_bytes(read_bytes(r)?))
}

fn read_u64<R: Read>(r: &mut R) -> Result<u64> {
    Ok(u64::from_le_bytes(read_bytes(r)?))
}

fn read_string<R: Read>(r: &mut R) -> Result<String> {
    let len = read_u64(r)?;
    ensure!(len <= MAX_STRING_BYTES, "string of {len} bytes");
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).context("unexpected end of file in a string")?;
    // llama.cpp vocabularies occasionally hold invalid UTF-8 pieces; keep them readable rather than fail.
    Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn read_value<R: Read>(r: &mut R, value_type: u32, file_len: u64, depth: usize) -> Result<MetadataValue> {
    use MetadataValue as V;
    Ok(match value_type {
        0 => V::U8(u8::from_le_bytes(read_bytes(r)?)),
        1 => V::I8(i8::from_le_bytes(read_bytes(r)?)),
        2 => V::U16(u16::from_le_bytes(read_bytes(r)?)),
        3 => V::I16(i16::from_le_bytes(read_bytes(r)?)),
        4 => V::U32(read_u32(r)?),
        5 => V::I32(i32::from_le_bytes(read_bytes(r)?)),
        6 => V::F32(f32::from_le_bytes(read_bytes(r)?)),
        7 => match u8::from_le_bytes(read_bytes(r)?) {
            0 => V::Bool(false),
            1 => V::Bool(true),
            b => bail!("invalid bool byte {b}"),
        },
        8 => V::String(read_string(r)?),
        9 => {
            ensure!(depth < 4, "arrays nested too deeply");
            let item_type = read_u32(r)?;
            let len = read_u64(r)?;
            ensure!(len <= file_len, "array of {len} items in a {file_len}-byte file");
            let items = (0..len)
                .map(|_| read_value(r, item_type, file_len, depth + 1))
                .collect::<Result<_>>()?;
            V::Array(items)
        }
        10 => V::U64(read_u64(r)?),
        11 => V::I64(i64::from_le_bytes(read_bytes(r)?)),
        12 => V::F64(f64::from_le_bytes(read_bytes(r)?)),
        t => bail!("unknown metadata value type {t}"),
    })
}
