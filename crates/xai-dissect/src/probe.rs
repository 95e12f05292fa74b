//! Probe sets: the images a network is dissected on.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File extensions read as probe images (case ignored).
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "ppm",
];

/// An ordered probe set: row `i` of every matrix is image `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSet {
    /// The folder the images were found in.
    pub root: PathBuf,
    /// The image files, sorted by path.
    pub images: Vec<PathBuf>,
}

impl ProbeSet {
    /// Every image file under `root`, recursively, sorted by path (so the order is the same on
    /// every machine and in every shard).
    pub fn from_dir(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::file(
                root,
                "the probe set must be a folder of images",
            ));
        }
        let mut images = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| Error::file(&dir, e))?;
            for entry in entries {
                let p = entry.map_err(|e| Error::file(&dir, e))?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                {
                    images.push(p);
                }
            }
        }
        images.sort();
        if images.is_empty() {
            return Err(Error::file(
                root,
                format!(
                    "the probe folder holds no images ({})",
                    IMAGE_EXTENSIONS.join(", ")
                ),
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
            images,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether the set is empty (never true for a set from [`from_dir`](Self::from_dir)).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}
