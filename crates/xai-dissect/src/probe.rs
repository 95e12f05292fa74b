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

/// Renders `n` seeded test-world scenes (112×112, seeds `0..n`) into `dir` as a probe set with
/// ground truth: `dir/images/scene_NNNNNN.png` and, per scene, one mask per concept present in
/// `dir/concepts/scene_NNNNNN/<concept>.png` (the layout [`crate::scorer::GroundTruthSimilarity`]
/// reads). Scenes already there are kept, so an interrupted run resumes; every file is written
/// atomically and the image last, so a present image means a complete scene. `progress` gets
/// the number of scenes done. Returns the probe set of `dir/images`.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let probe = xai_dissect::probe::testworld_probe(dir.path(), 2, &mut |_| {})?;
/// assert_eq!(probe.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn testworld_probe(dir: &Path, n: usize, progress: &mut dyn FnMut(usize)) -> Result<ProbeSet> {
    use xai_testworld::{Scene, SceneConfig};
    if n == 0 {
        return Err(Error::Parameter {
            name: "scenes",
            reason: "a probe set needs at least one scene".into(),
        });
    }
    let config = SceneConfig {
        width: 112,
        height: 112,
        ..SceneConfig::default()
    };
    let images = dir.join("images");
    for seed in 0..n as u64 {
        let name = format!("scene_{seed:06}");
        let img_path = images.join(format!("{name}.png"));
        if !img_path.exists() {
            let scene = Scene::generate(seed, &config).map_err(|e| Error::Parameter {
                name: "scenes",
                reason: e.to_string(),
            })?;
            let concept_dir = dir.join("concepts").join(&name);
            for (concept, mask) in &scene.concepts {
                save_png(
                    &concept_dir.join(format!("{}.png", concept.name)),
                    &image::DynamicImage::ImageLuma8(mask.to_gray_image()),
                )?;
            }
            save_png(
                &img_path,
                &image::DynamicImage::ImageRgb8(scene.image.clone()),
            )?;
        }
        progress(seed as usize + 1);
    }
    ProbeSet::from_dir(&images)
}

/// Writes a PNG through a temporary file in the same folder, then renames it into place.
fn save_png(path: &Path, img: &image::DynamicImage) -> Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(|e| Error::file(folder, e))?;
    let tmp = folder.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| Error::file(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::file(path, e))
}
