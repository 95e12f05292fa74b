//! What a dissection writes and shows: CSV/JSON files, charts (SVG and PNG), montages of the
//! top-activating probe images, Markdown/HTML reports, and the comparison of two models.
//!
//! [`write_outputs`] writes one model's folder:
//!
//! | file | what |
//! |---|---|
//! | `descriptions.csv` | `layer,unit,description,similarity,top_k`, one row per unit (CLIP-Dissect's columns, plus the next concepts as `concept:score;…`) |
//! | `dissection.json` | the whole [`Dissection`], read back by [`read_dissection`] |
//! | `summary.json` | a [`Summary`]: per layer units, distinct concepts, top concepts with counts, share per concept kind, object-/scene-like shares, mean similarity |
//! | `concept_frequency.{svg,png}` | per layer, horizontal bars of the most frequent concepts |
//! | `concept_kinds.{svg,png}` | per layer, the share of units per concept kind (stacked) |
//! | `montages/<layer>_<unit>.png` | a grid of a unit's top-activating probe images with its label |
//! | `report.md`, `report.html` | tables per layer with the charts and some montages; both open offline (files are linked relatively) |
//!
//! Montages: a layer may have thousands of units, so by default only the
//! [`ReportConfig::default`] number of best-scoring units per layer get one
//! ([`MontageUnits::Top`]); ask for [`MontageUnits::All`] to draw every unit.
//! Probe images that cannot be read become grey placeholders and a warning
//! ([`Written::warnings`], also listed in the reports), or an error with
//! [`MissingImages::Error`].
//!
//! [`compare`] writes the comparison of two dissections (see its docs). Every file is written
//! atomically: to a temporary file in the same folder, then renamed.
//!
//! The PNGs are drawn by our own small chart code with a built-in 5×7 bitmap font, so nothing
//! depends on system fonts; the SVGs use the same layout with a monospace font.

use std::path::{Path, PathBuf};

use crate::label::Dissection;

mod canvas;
mod charts;
mod compare;
mod csv;
mod document;
mod font;
mod montage;
mod summary;
#[cfg(test)]
pub(crate) mod testing;

pub use compare::{compare, compare_dissections, compare_with, Comparison, LayerComparison};
pub use summary::{
    concept_counts, kind_group, layer_order, summarize, summarize_layer, ConceptCount, KindGroup,
    LayerSummary, Summary, NO_KIND,
};

/// What can go wrong while writing or reading reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The folder has no `dissection.json`.
    #[error(
        "{dir} is not a dissection output folder: it has no dissection.json (write one with \
         `xai dissect --out DIR` or xai_dissect::report::write_outputs)"
    )]
    NotADissection {
        /// The folder.
        dir: PathBuf,
    },
    /// A JSON file could not be parsed as what it should hold.
    #[error("{path} is not a valid {what}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A dissection that cannot be written as it is.
    #[error("invalid dissection: {0}")]
    Invalid(String),
    /// A probe image of a montage could not be read ([`MissingImages::Error`]).
    #[error("cannot read probe image {path} for a montage: {reason} (use MissingImages::Placeholder to draw a placeholder instead)")]
    Image {
        /// The image file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, ReportError>;

/// Which units of each layer get a montage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MontageUnits {
    /// None.
    None,
    /// The `n` best-scoring units of each layer (highest similarity first, ties by unit).
    Top(usize),
    /// Every unit (a file per unit: mind layers with thousands of units).
    All,
}

/// What to do with a top image that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingImages {
    /// Draw a grey, crossed-out tile and record a warning.
    Placeholder,
    /// Fail with [`ReportError::Image`].
    Error,
}

/// Settings of [`write_outputs_with`] (and of [`compare`]'s charts).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// Concepts per layer in `summary.json`'s `top_concepts` and in the charts. Default 10.
    pub top_concepts: usize,
    /// Which units get a montage. Default [`MontageUnits::Top`]`(16)`.
    pub montage_units: MontageUnits,
    /// Top images per montage (at most those recorded in the labels). Default 10.
    pub montage_images: usize,
    /// Images per montage row. Default 5.
    pub montage_columns: usize,
    /// Side of a montage tile in pixels (images are fitted, keeping their aspect). Default 96.
    pub tile_size: u32,
    /// What to do with top images that cannot be read. Default [`MissingImages::Placeholder`].
    pub missing_images: MissingImages,
    /// Folder that relative [`TopImage::path`](crate::TopImage::path)s are relative to.
    /// Default: none (the current directory).
    pub image_root: Option<PathBuf>,
    /// Units per layer listed in the reports' tables (best-scoring first; the CSV has all).
    /// Default 20.
    pub report_units: usize,
    /// Montages per layer shown in the reports. Default 4.
    pub report_montages: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            top_concepts: 10,
            montage_units: MontageUnits::Top(16),
            montage_images: 10,
            montage_columns: 5,
            tile_size: 96,
            missing_images: MissingImages::Placeholder,
            image_root: None,
            report_units: 20,
            report_montages: 4,
        }
    }
}

/// What [`write_outputs_with`] wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    /// The files, in the order written.
    pub files: Vec<PathBuf>,
    /// Problems that did not stop the run (unreadable probe images).
    pub warnings: Vec<String>,
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// PNG bytes of an image.
pub(crate) fn png_bytes(img: &image::RgbImage) -> Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|e| ReportError::Invalid(format!("cannot encode a PNG: {e}")))?;
    Ok(buf.into_inner())
}

/// Writes `<stem>.svg` and `<stem>.png` of a chart into `dir`, recording them in `files`.
pub(crate) fn write_chart(
    dir: &Path,
    stem: &str,
    chart: &canvas::Canvas,
    files: &mut Vec<PathBuf>,
) -> Result<()> {
    let svg = dir.join(format!("{stem}.svg"));
    write_atomic(&svg, chart.to_svg().as_bytes())?;
    files.push(svg);
    let png = dir.join(format!("{stem}.png"));
    write_atomic(&png, &png_bytes(&chart.to_image())?)?;
    files.push(png);
    Ok(())
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_`, for file names.
pub(crate) fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// JSON text of `value`, pretty-printed.
pub(crate) fn to_json<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|source| ReportError::Json {
        path: PathBuf::from(what),
        what,
        source,
    })
}

/// Refuses what JSON cannot hold: non-finite scores would be written as `null` and the file
/// could not be read back.
fn validate(d: &Dissection) -> Result<()> {
    for l in &d.labels {
        let bad = !l.similarity.is_finite()
            || l.top_k.iter().any(|c| !c.score.is_finite())
            || l.top_images.iter().any(|t| !t.activation.is_finite());
        if bad {
            return Err(ReportError::Invalid(format!(
                "{} unit {} has a non-finite score or activation (NaN or infinite); check the \
                 activations and the similarity function's inputs",
                l.layer, l.unit
            )));
        }
    }
    Ok(())
}

/// The units of `layer` that get a montage under `which`.
fn montage_units<'a>(
    d: &'a Dissection,
    layer: &str,
    which: MontageUnits,
) -> Vec<&'a crate::label::NeuronLabel> {
    let mut labels = summary::layer_labels(d, layer);
    match which {
        MontageUnits::None => vec![],
        MontageUnits::All => labels,
        MontageUnits::Top(n) => {
            labels.sort_by(|a, b| {
                b.similarity
                    .total_cmp(&a.similarity)
                    .then(a.unit.cmp(&b.unit))
            });
            labels.truncate(n);
            labels
        }
    }
}

/// Writes every output of one dissection into `out_dir` with the default [`ReportConfig`],
/// and returns the files written. See the [module docs](self) for the list.
///
/// ```
/// use xai_dissect::{Dissection, NeuronLabel};
/// let d = Dissection {
///     model: "demo".into(),
///     method: "clip".into(),
///     similarity: "soft-wpmi".into(),
///     layers: vec!["layer4".into()],
///     probe_images: 10,
///     labels: (0..4)
///         .map(|unit| NeuronLabel {
///             layer: "layer4".into(),
///             unit,
///             concept: if unit < 3 { "fin" } else { "water" }.into(),
///             similarity: 0.5,
///             top_k: vec![],
///             top_images: vec![],
///         })
///         .collect(),
///     concept_kinds: [("fin".to_string(), "part".to_string())].into(),
/// };
/// let dir = tempfile::tempdir()?;
/// let files = xai_dissect::report::write_outputs(&d, dir.path())?;
/// assert!(files.contains(&dir.path().join("descriptions.csv")));
/// assert_eq!(xai_dissect::report::read_dissection(dir.path())?, d);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_outputs(d: &Dissection, out_dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(write_outputs_with(d, out_dir, &ReportConfig::default())?.files)
}

/// [`write_outputs`] with explicit settings; also returns the warnings (unreadable images).
pub fn write_outputs_with(d: &Dissection, out_dir: &Path, cfg: &ReportConfig) -> Result<Written> {
    validate(d)?;
    let mut files = Vec::new();
    let put = |name: &str, bytes: &[u8], files: &mut Vec<PathBuf>| -> Result<()> {
        let path = out_dir.join(name);
        write_atomic(&path, bytes)?;
        files.push(path);
        Ok(())
    };
    put(
        "descriptions.csv",
        csv::descriptions(d).as_bytes(),
        &mut files,
    )?;
    put(
        "dissection.json",
        to_json(d, "dissection")?.as_bytes(),
        &mut files,
    )?;
    let summary = summarize(d, cfg.top_concepts);
    put(
        "summary.json",
        to_json(&summary, "summary")?.as_bytes(),
        &mut files,
    )?;

    let kinds = charts::KindColours::new(
        summary
            .layers
            .iter()
            .flat_map(|l| l.kind_shares.keys().map(String::as_str)),
    );
    let title = format!("{}: best concept per unit", d.model);
    let chart = charts::concept_frequency(&title, &summary.layers, &kinds);
    write_chart(out_dir, "concept_frequency", &chart, &mut files)?;
    let rows: Vec<(String, &_)> = summary
        .layers
        .iter()
        .map(|l| (l.layer.clone(), &l.kind_shares))
        .collect();
    let title = format!("{}: concept kinds per layer", d.model);
    let chart = charts::kind_shares(&title, &rows, &kinds);
    write_chart(out_dir, "concept_kinds", &chart, &mut files)?;

    let mut warnings = Vec::new();
    let mut montages = Vec::new();
    let mut thumbs = montage::Thumbnails::default();
    for layer in layer_order(d) {
        for label in montage_units(d, &layer, cfg.montage_units) {
            let (img, warn) = montage::montage(label, cfg, &mut thumbs)?;
            warnings.extend(warn);
            let rel = format!("montages/{}_{:04}.png", file_safe(&layer), label.unit);
            put(&rel, &png_bytes(&img)?, &mut files)?;
            montages.push(document::MontageRef {
                layer: layer.clone(),
                unit: label.unit,
                path: rel,
            });
        }
    }

    let doc = document::Document {
        d,
        summary: &summary,
        montages: &montages,
        warnings: &warnings,
        cfg,
    };
    put("report.md", doc.markdown().as_bytes(), &mut files)?;
    put("report.html", doc.html().as_bytes(), &mut files)?;
    Ok(Written { files, warnings })
}

/// Reads the [`Dissection`] that [`write_outputs`] wrote into `dir` (its `dissection.json`).
pub fn read_dissection(dir: &Path) -> Result<Dissection> {
    let meta = std::fs::metadata(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ReportError::NotADissection {
            dir: dir.to_path_buf(),
        });
    }
    let path = dir.join("dissection.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::NotADissection {
                dir: dir.to_path_buf(),
            })
        }
        Err(source) => return Err(ReportError::Io { path, source }),
    };
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path,
        what: "dissection (the dissection.json that write_outputs writes)",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use testing::testworld_dissection;

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(file_safe("layer4.1"), "layer4.1");
        assert_eq!(file_safe("blocks/3 attn"), "blocks_3_attn");
        assert_eq!(file_safe("..x"), "_..x");
    }

    #[test]
    fn write_outputs_writes_every_file_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = testworld_dissection("testworld-objects", 0);
        let cfg = ReportConfig {
            montage_units: MontageUnits::Top(2),
            ..ReportConfig::default()
        };
        let w = write_outputs_with(&d, dir.path(), &cfg).unwrap();
        for name in [
            "descriptions.csv",
            "dissection.json",
            "summary.json",
            "concept_frequency.svg",
            "concept_frequency.png",
            "concept_kinds.svg",
            "concept_kinds.png",
            "report.md",
            "report.html",
        ] {
            assert!(w.files.contains(&dir.path().join(name)), "{name}");
        }
        let montages = w
            .files
            .iter()
            .filter(|f| f.starts_with(dir.path().join("montages")))
            .count();
        assert_eq!(montages, 2 * d.layers.len());
        // The test dissection's top images do not exist on disk.
        assert!(!w.warnings.is_empty());
        assert_eq!(read_dissection(dir.path()).unwrap(), d);
        let csv = std::fs::read_to_string(dir.path().join("descriptions.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + d.labels.len());
        // No temporary file is left behind.
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn non_finite_scores_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = testworld_dissection("m", 0);
        d.labels[5].similarity = f32::NAN;
        let err = write_outputs(&d, dir.path()).unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
        assert!(!dir.path().join("descriptions.csv").exists());
    }

    #[test]
    fn reading_a_folder_that_is_not_a_dissection_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_dissection(dir.path()).unwrap_err();
        assert!(matches!(err, ReportError::NotADissection { .. }), "{err}");
        std::fs::write(dir.path().join("dissection.json"), r#"{"model": 3}"#).unwrap();
        let err = read_dissection(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("dissection.json") && err.contains("invalid type"),
            "{err}"
        );
        let err = read_dissection(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, ReportError::Io { .. }), "{err}");
    }
}
