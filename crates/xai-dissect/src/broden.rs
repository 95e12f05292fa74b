//! Broden-style probe folders (the layout of NetDissect's `broden1_224` / `broden1_227`), read
//! as a probe set with per-pixel concept masks for the IoU method.
//!
//! # Layout
//! - `index.csv`: header `image,split,ih,iw,sh,sw,` then one column per category (Broden:
//!   `color,object,part,material,scene,texture`; any set is read). `image` is relative to
//!   `images/`. A category cell holds `;`-separated items, dominant first, possibly none: a
//!   decimal number is a whole-image label, anything else a segmentation PNG relative to
//!   `images/` whose pixels hold label numbers as `R + 256·G`. Segmentations are `sh×sw`.
//! - `label.csv`: `number,name,category,frequency,coverage,syns`, the category field listing
//!   the label's images per category, e.g. `material(36);object(3)`. Label 0 is "unlabelled".
//! - optional `c_<category>.csv` (`code,number,name,frequency,coverage`): when every category
//!   has one, a label's *primary category* is the one where it covers most pixels, as
//!   NetDissect-Lite picks it (ties to the later category); otherwise the one with the largest
//!   count in `label.csv` (the first listed on ties). `category.csv` only orders categories.
//!
//! A label's mask in an image is the union of its pixels over every segmentation of the row,
//! whatever the column; a whole-image label covers all `sh×sw` pixels. Rows with no label in
//! any category are skipped, as NetDissect-Lite skips them. Only the labels present in an
//! image get a mask, so memory per image is a few `sh×sw` bytes, not one image per label.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, Luma};
use ndarray::Array2;

use crate::netdissect::ConceptMasks;
use crate::scorer::{presence_coverage, ConceptSimilarity, GroundTruthSimilarity};
use crate::{Error, ProbeSet, Result};

/// The first columns of `index.csv`, before the categories.
const INDEX_META: [&str; 6] = ["image", "split", "ih", "iw", "sh", "sw"];

/// The largest segmentation read, in pixels: a whole-image label becomes an `sh×sw` mask, so
/// a corrupt size must not allocate gigabytes.
const MAX_PIXELS: u64 = 1 << 26;

/// Label numbers are `R + 256·G` of 8-bit channels.
const MAX_LABEL: u32 = 65_535;

/// One item of a category cell.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// A segmentation PNG, relative to `images/`.
    Segmentation(String),
    /// A label of the whole image.
    Whole(u32),
}

/// One row of `index.csv`.
#[derive(Debug, Clone)]
struct Row {
    /// Line number in `index.csv`, for errors.
    line: usize,
    /// Segmentation size `(sw, sh)`.
    size: (u32, u32),
    items: Vec<Item>,
}

/// A label of `label.csv`.
#[derive(Debug, Clone)]
struct Label {
    name: String,
    category: String,
}

/// A Broden-style probe folder: its images in index order, its labels as concepts (with their
/// primary categories as kinds), and their masks through [`ConceptMasks`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// # std::fs::create_dir_all(root.join("images"))?;
/// # image::RgbImage::new(4, 4).save(root.join("images/a.png"))?;
/// // A 4×4 segmentation: label 2 (R = 2, G = 0) on the top row, unlabelled elsewhere.
/// let seg = image::RgbImage::from_fn(4, 4, |_, y| image::Rgb([if y == 0 { 2 } else { 0 }, 0, 0]));
/// seg.save(root.join("images/a_object.png"))?;
/// std::fs::write(root.join("index.csv"),
///     "image,split,ih,iw,sh,sw,object,scene\na.png,train,4,4,4,4,a_object.png,1\n")?;
/// std::fs::write(root.join("label.csv"), "number,name,category,frequency,coverage,syns\n\
///     1,beach,scene(1),1,1.0,\n2,sky,object(1),1,0.25,\n")?;
///
/// use xai_dissect::{broden::BrodenProbe, netdissect::ConceptMasks};
/// let probe = BrodenProbe::open(root)?;
/// assert_eq!(probe.concepts(), ["beach", "sky"]);
/// assert_eq!(probe.kinds()["sky"], "object");
/// let masks = probe.masks(&probe.images()[0])?;
/// let sky = masks[1].as_ref().unwrap();
/// assert_eq!((sky.get_pixel(0, 0).0[0], sky.get_pixel(0, 1).0[0]), (255, 0));
/// assert!(masks[0].as_ref().unwrap().pixels().all(|p| p.0[0] == 255), "a whole-image label");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BrodenProbe {
    root: PathBuf,
    images: Vec<PathBuf>,
    rows: Vec<Row>,
    row_of: HashMap<PathBuf, usize>,
    /// Indexed by label number; `None` for 0 and numbers `label.csv` does not list.
    labels: Vec<Option<Label>>,
    concepts: Vec<String>,
    /// Indexed by label number: the label's position in `concepts`, if chosen.
    slot: Vec<Option<usize>>,
}

impl BrodenProbe {
    /// Whether `dir` looks like a Broden-style folder (it holds `index.csv`).
    pub fn is_broden(dir: &Path) -> bool {
        dir.join("index.csv").is_file()
    }

    /// Reads `index.csv` and `label.csv` of `root` (and `c_*.csv` where present); every
    /// label of `label.csv` is a concept, in number order.
    pub fn open(root: &Path) -> Result<Self> {
        let root = std::path::absolute(root).map_err(|e| Error::file(root, e))?;
        let label_path = root.join("label.csv");
        let (mut labels, order) = read_labels(&label_path)?;
        let index_path = root.join("index.csv");
        let (categories, raw_rows) = read_index(&index_path)?;
        if let Some(primary) = read_category_coverage(&root, &categories)? {
            for (number, c) in primary {
                if let Some(Some(label)) = labels.get_mut(number as usize) {
                    label.category = categories[c].clone();
                }
            }
        }
        let mut images = Vec::with_capacity(raw_rows.len());
        let mut rows = Vec::with_capacity(raw_rows.len());
        let mut row_of = HashMap::new();
        for (image, row) in raw_rows {
            for item in &row.items {
                if let Item::Whole(n) = item {
                    if !matches!(labels.get(*n as usize), Some(Some(_))) {
                        return Err(Error::file(
                            &index_path,
                            format!(
                                "line {}: label {n} is not in label.csv; the index and label files must come from the same dataset",
                                row.line
                            ),
                        ));
                    }
                }
            }
            let path = root.join("images").join(&image);
            if row_of.insert(path.clone(), rows.len()).is_some() {
                return Err(Error::file(
                    &index_path,
                    format!("line {}: image `{image}` is listed twice", row.line),
                ));
            }
            images.push(path);
            rows.push(row);
        }
        if images.is_empty() {
            return Err(Error::file(
                &index_path,
                "no image has any label; a Broden index lists labelled images",
            ));
        }
        let concepts: Vec<String> = order
            .iter()
            .filter_map(|&n| labels[n as usize].as_ref().map(|l| l.name.clone()))
            .collect();
        let mut slot = vec![None; labels.len()];
        for (c, &n) in order.iter().enumerate() {
            slot[n as usize] = Some(c);
        }
        Ok(Self {
            root,
            images,
            rows,
            row_of,
            labels,
            concepts,
            slot,
        })
    }

    /// Keeps only the concepts `names`, in that order (e.g. a user's concept file). Fails,
    /// naming them and the closest label names, when some are not in `label.csv`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let native = xai_dissect::probe::testworld_probe(&dir.path().join("tw"), 1, &mut |_| {})?;
    /// # xai_dissect::broden::export_testworld(&native.images, &dir.path().join("broden"))?;
    /// use xai_dissect::broden::BrodenProbe;
    /// let probe = BrodenProbe::open(&dir.path().join("broden"))?;
    /// let sky = probe.clone().with_concepts(&["sky".into(), "red".into()])?;
    /// assert_eq!(sky.concepts(), ["sky", "red"]);
    /// let err = probe.with_concepts(&["skye".into()]).unwrap_err().to_string();
    /// assert!(err.contains("`skye` (closest: `sky`)"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_concepts(mut self, names: &[String]) -> Result<Self> {
        let number: HashMap<&str, usize> = self
            .labels
            .iter()
            .enumerate()
            .filter_map(|(n, l)| l.as_ref().map(|l| (l.name.as_str(), n)))
            .collect();
        let unknown: Vec<String> = names
            .iter()
            .filter(|c| !number.contains_key(c.as_str()))
            .map(|c| match closest(c, number.keys().copied()) {
                Some(near) => format!("`{c}` (closest: `{near}`)"),
                None => format!("`{c}`"),
            })
            .collect();
        if !unknown.is_empty() {
            let shown = unknown.len().min(8);
            return Err(Error::Parameter {
                name: "concepts",
                reason: format!(
                    "{} of {} concepts are not labels of {}: {}{}; use the names of its label.csv",
                    unknown.len(),
                    names.len(),
                    self.root.join("label.csv").display(),
                    unknown[..shown].join(", "),
                    if unknown.len() > shown { ", …" } else { "" }
                ),
            });
        }
        if names.iter().collect::<HashSet<_>>().len() != names.len() {
            return Err(Error::Parameter {
                name: "concepts",
                reason: "a concept is listed twice; give each once".into(),
            });
        }
        let mut slot = vec![None; self.labels.len()];
        for (c, name) in names.iter().enumerate() {
            slot[number[name.as_str()]] = Some(c);
        }
        self.slot = slot;
        self.concepts = names.to_vec();
        Ok(self)
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The probe images, absolute, in `index.csv` order.
    pub fn images(&self) -> &[PathBuf] {
        &self.images
    }

    /// The probe images as a [`ProbeSet`] (rooted at `images/`, in index order).
    pub fn probe_set(&self) -> ProbeSet {
        ProbeSet {
            root: self.root.join("images"),
            images: self.images.clone(),
        }
    }

    /// The concepts, in label number order (or as chosen by
    /// [`with_concepts`](Self::with_concepts)).
    pub fn concepts(&self) -> &[String] {
        &self.concepts
    }

    /// Each concept's primary category (`color`, `object`, …), the kind the IoU method
    /// groups concepts by.
    pub fn kinds(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .zip(&self.slot)
            .filter_map(|(l, s)| Some((l.as_ref()?, (*s)?)))
            .map(|(l, _)| (l.name.clone(), l.category.clone()))
            .collect()
    }

    /// The row of `image`, or why there is none.
    fn row(&self, image: &Path) -> Result<&Row> {
        self.row_of
            .get(image)
            .map(|&i| &self.rows[i])
            .ok_or_else(|| {
                Error::file(
                    image,
                    format!(
                        "not an image of {}; pass the probe images of this folder",
                        self.root.join("index.csv").display()
                    ),
                )
            })
    }
}

impl ConceptMasks for BrodenProbe {
    /// Decodes each segmentation of the image's row once; a concept gets a mask only when it
    /// is present.
    fn masks(&self, image: &Path) -> Result<Vec<Option<GrayImage>>> {
        let row = self.row(image)?;
        let (sw, sh) = row.size;
        let mut out: Vec<Option<GrayImage>> = vec![None; self.concepts.len()];
        let mark = |out: &mut Vec<Option<GrayImage>>, c: usize, x: u32, y: u32| {
            out[c]
                .get_or_insert_with(|| GrayImage::new(sw, sh))
                .put_pixel(x, y, Luma([255]));
        };
        for item in &row.items {
            match item {
                Item::Whole(n) => {
                    if let Some(Some(c)) = self.slot.get(*n as usize) {
                        out[*c] = Some(GrayImage::from_pixel(sw, sh, Luma([255])));
                    }
                }
                Item::Segmentation(rel) => {
                    let path = self.root.join("images").join(rel);
                    let seg = image::open(&path).map_err(|e| {
                        Error::file(&path, format!("cannot read the segmentation: {e}"))
                    })?;
                    let rg = red_green(&seg).ok_or_else(|| {
                        Error::file(
                            &path,
                            format!(
                                "a {:?} image; segmentations are 8-bit RGB(A) PNGs holding labels as R + 256·G",
                                seg.color()
                            ),
                        )
                    })?;
                    if (seg.width(), seg.height()) != (sw, sh) {
                        return Err(Error::file(
                            &path,
                            format!(
                                "the segmentation is {}×{}, index.csv line {} says sw×sh = {sw}×{sh}",
                                seg.width(),
                                seg.height(),
                                row.line
                            ),
                        ));
                    }
                    for (p, n) in rg.enumerate() {
                        if n == 0 {
                            continue;
                        }
                        let (x, y) = (p as u32 % sw, p as u32 / sw);
                        match (self.labels.get(n as usize), self.slot.get(n as usize)) {
                            (Some(Some(_)), Some(Some(c))) => mark(&mut out, *c, x, y),
                            (Some(Some(_)), _) => {}
                            _ => {
                                let why = format!(
                                    "pixel ({x}, {y}) has label {n}, which label.csv does not list"
                                );
                                return Err(Error::file(&path, why));
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

impl ConceptSimilarity for BrodenProbe {
    fn concepts(&self) -> &[String] {
        &self.concepts
    }
    fn identity(&self) -> String {
        "broden ground-truth 0.5*present+0.5*coverage v1".into()
    }
    /// The ground-truth stand-in for CLIP of [`GroundTruthSimilarity`], from these masks.
    fn similarities(&self, _first: usize, images: &[PathBuf]) -> Result<Array2<f32>> {
        let mut out = Array2::<f32>::zeros((images.len(), self.concepts.len()));
        for (i, img) in images.iter().enumerate() {
            for (c, s) in presence_coverage(&self.masks(img)?).into_iter().enumerate() {
                out[[i, c]] = s;
            }
        }
        Ok(out)
    }
}

/// Writes test-world probe images (the `images` of [`crate::probe::testworld_probe`], with
/// their concept masks beside them) as a Broden-style folder `out`, and opens it: the images
/// copied to `out/images/`, one category column per test-world concept kind (`colour`, `part`,
/// `texture`, `scene`), each concept a label numbered in the test world's order. Overlapping
/// concepts of one kind go to separate segmentation PNGs of the cell, so every mask survives
/// exactly. Dissecting the export gives the same result as dissecting the original.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let native = xai_dissect::probe::testworld_probe(&dir.path().join("tw"), 2, &mut |_| {})?;
/// let broden = xai_dissect::broden::export_testworld(&native.images, &dir.path().join("broden"))?;
/// assert_eq!(broden.images().len(), 2);
/// assert_eq!(broden.concepts().len(), 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn export_testworld(images: &[PathBuf], out: &Path) -> Result<BrodenProbe> {
    let concepts = crate::scorer::testworld_concepts();
    let mut kinds: Vec<&str> = Vec::new();
    for (_, k) in &concepts {
        if !kinds.contains(&k.as_str()) {
            kinds.push(k);
        }
    }
    let truth = GroundTruthSimilarity::new(concepts.iter().map(|(n, _)| n.clone()).collect());
    let image_dir = out.join("images");
    std::fs::create_dir_all(&image_dir).map_err(|e| Error::file(&image_dir, e))?;
    let mut index = format!("{},{}\n", INDEX_META.join(","), kinds.join(","));
    let mut frequency = vec![0usize; concepts.len()];
    let mut coverage = vec![0f64; concepts.len()];
    let mut names = HashSet::new();
    for image in images {
        let name = image
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.contains([',', ';', '"']))
            .ok_or_else(|| Error::file(image, "the file name is not plain text"))?;
        if !names.insert(name.to_string()) {
            return Err(Error::file(image, "two probe images share this file name"));
        }
        let stem = Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        let (iw, ih) = image::image_dimensions(image).map_err(|e| Error::file(image, e))?;
        std::fs::copy(image, image_dir.join(name)).map_err(|e| Error::file(image, e))?;
        let masks = truth.masks(image)?;
        let (sw, sh) = masks
            .iter()
            .flatten()
            .map(|m| m.dimensions())
            .next()
            .unwrap_or((iw, ih));
        let mut cells = Vec::new();
        for kind in &kinds {
            // Layers of one kind: each concept goes to the first layer where it overlaps nothing.
            let mut layers: Vec<image::RgbImage> = Vec::new();
            for (c, m) in masks.iter().enumerate() {
                let Some(m) = m.as_ref().filter(|_| concepts[c].1 == *kind) else {
                    continue;
                };
                if m.dimensions() != (sw, sh) {
                    return Err(Error::file(image, "its concept masks differ in size"));
                }
                let on: Vec<bool> = m.pixels().map(|p| p.0[0] > 127).collect();
                let count = on.iter().filter(|&&v| v).count();
                if count == 0 {
                    continue;
                }
                frequency[c] += 1;
                coverage[c] += count as f64 / (sw as f64 * sh as f64);
                let free = |l: &image::RgbImage| {
                    l.pixels().zip(&on).all(|(p, &v)| !v || p.0[..2] == [0, 0])
                };
                let layer = match layers.iter().position(free) {
                    Some(j) => j,
                    None => {
                        layers.push(image::RgbImage::new(sw, sh));
                        layers.len() - 1
                    }
                };
                let n = c + 1;
                let value = image::Rgb([(n % 256) as u8, (n / 256) as u8, 0]);
                for (p, _) in layers[layer].pixels_mut().zip(&on).filter(|(_, v)| **v) {
                    *p = value;
                }
            }
            let mut files = Vec::new();
            for (j, layer) in layers.iter().enumerate() {
                let file = format!("{stem}_{kind}_{j}.png");
                let path = image_dir.join(&file);
                layer.save(&path).map_err(|e| Error::file(&path, e))?;
                files.push(file);
            }
            cells.push(files.join(";"));
        }
        index.push_str(&format!(
            "{name},train,{ih},{iw},{sh},{sw},{}\n",
            cells.join(",")
        ));
    }
    let mut labels = String::from("number,name,category,frequency,coverage,syns\n");
    for (c, (name, kind)) in concepts.iter().enumerate() {
        labels.push_str(&format!(
            "{},{name},{kind}({}),{},{:.6},\n",
            c + 1,
            frequency[c],
            frequency[c],
            coverage[c]
        ));
    }
    for (file, text) in [("index.csv", index), ("label.csv", labels)] {
        let path = out.join(file);
        std::fs::write(&path, text).map_err(|e| Error::file(&path, e))?;
    }
    BrodenProbe::open(out)
}

/// The label number `R + 256·G` of every pixel, row-major, for 8-bit RGB(A) images.
fn red_green(img: &DynamicImage) -> Option<Box<dyn Iterator<Item = u32> + '_>> {
    match img {
        DynamicImage::ImageRgb8(m) => Some(Box::new(
            m.pixels().map(|p| p.0[0] as u32 + 256 * p.0[1] as u32),
        )),
        DynamicImage::ImageRgba8(m) => Some(Box::new(
            m.pixels().map(|p| p.0[0] as u32 + 256 * p.0[1] as u32),
        )),
        _ => None,
    }
}

/// The fields of one CSV line; fields may be double-quoted (with `""` for a quote).
fn split_csv(line: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        let field = fields.last_mut().ok_or("empty")?;
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(String::new()),
            _ => field.push(ch),
        }
    }
    if quoted {
        return Err("an unterminated quote");
    }
    Ok(fields)
}

/// The non-blank lines of a CSV file after its header: `(header, [(line number, fields)])`.
#[allow(clippy::type_complexity)]
fn read_csv(path: &Path, what: &str) -> Result<(Vec<String>, Vec<(usize, Vec<String>)>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::file(
            path,
            format!("cannot read the {what} ({e}); a Broden-style folder holds index.csv, label.csv and images/"),
        )
    })?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, head) = lines
        .next()
        .ok_or_else(|| Error::file(path, format!("the {what} is empty")))?;
    let header =
        split_csv(head.trim_start_matches('\u{feff}')).map_err(|e| Error::file(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields =
            split_csv(line).map_err(|e| Error::file(path, format!("line {}: {e}", i + 1)))?;
        if fields.len() != header.len() {
            return Err(Error::file(
                path,
                format!(
                    "line {}: {} fields, the header has {}",
                    i + 1,
                    fields.len(),
                    header.len()
                ),
            ));
        }
        rows.push((i + 1, fields));
    }
    Ok((header, rows))
}

/// The position of column `name` in `header`.
fn column(path: &Path, header: &[String], name: &str) -> Result<usize> {
    header.iter().position(|h| h == name).ok_or_else(|| {
        Error::file(
            path,
            format!(
                "bad header: no `{name}` column (found {})",
                header.join(",")
            ),
        )
    })
}

/// `label.csv`: the labels by number, and the numbers in order.
fn read_labels(path: &Path) -> Result<(Vec<Option<Label>>, Vec<u32>)> {
    let (header, rows) = read_csv(path, "label file")?;
    let (num, name, cat) = (
        column(path, &header, "number")?,
        column(path, &header, "name")?,
        column(path, &header, "category")?,
    );
    let mut labels: Vec<Option<Label>> = Vec::new();
    let mut names = HashSet::new();
    let mut order = Vec::new();
    for (line, f) in rows {
        let bad = |reason: String| Error::file(path, format!("line {line}: {reason}"));
        let n: u32 = f[num]
            .trim()
            .parse()
            .map_err(|_| bad(format!("label number `{}` is not a number", f[num])))?;
        if n == 0 {
            continue; // "unlabelled"
        }
        if n > MAX_LABEL {
            return Err(bad(format!(
                "label number {n} is over {MAX_LABEL}, the most R + 256·G can hold"
            )));
        }
        let label_name = f[name].trim().to_string();
        if label_name.is_empty() {
            return Err(bad("the label has no name".into()));
        }
        if !names.insert(label_name.clone()) {
            return Err(bad(format!("label name `{label_name}` is used twice")));
        }
        let category = primary_category(&f[cat]).map_err(bad)?;
        if labels.len() <= n as usize {
            labels.resize(n as usize + 1, None);
        }
        if labels[n as usize].is_some() {
            return Err(bad(format!("label number {n} is used twice")));
        }
        labels[n as usize] = Some(Label {
            name: label_name,
            category,
        });
        order.push(n);
    }
    if order.is_empty() {
        return Err(Error::file(path, "no labels (other than 0)"));
    }
    order.sort_unstable();
    Ok((labels, order))
}

/// The category with the largest count in a field like `material(36);object(3)` (the first
/// on ties, as the writer lists them largest first).
fn primary_category(field: &str) -> std::result::Result<String, String> {
    let mut best: Option<(u64, &str)> = None;
    for part in field.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let parsed = part
            .strip_suffix(')')
            .and_then(|p| p.split_once('('))
            .and_then(|(c, n)| Some((c.trim(), n.trim().parse::<u64>().ok()?)));
        let Some((c, n)) = parsed.filter(|(c, _)| !c.is_empty()) else {
            return Err(format!(
                "category `{part}` is not `name(count)`, as in `object(12);part(3)`"
            ));
        };
        if best.is_none_or(|(m, _)| n > m) {
            best = Some((n, c));
        }
    }
    best.map(|(_, c)| c.to_string())
        .ok_or_else(|| "the label has no category".to_string())
}

/// `index.csv`: the category columns, and `(image, row)` for each labelled row.
#[allow(clippy::type_complexity)]
fn read_index(path: &Path) -> Result<(Vec<String>, Vec<(String, Row)>)> {
    let (header, rows) = read_csv(path, "index file")?;
    if header.len() <= INDEX_META.len() || header[..INDEX_META.len()] != INDEX_META {
        return Err(Error::file(
            path,
            format!(
                "bad header `{}`: expected `{}` then the category columns (e.g. color,object,part,material,scene,texture)",
                header.join(","),
                INDEX_META.join(",")
            ),
        ));
    }
    let categories = header[INDEX_META.len()..].to_vec();
    let mut out = Vec::with_capacity(rows.len());
    for (line, f) in rows {
        let size = |i: usize| -> Result<u32> {
            f[i].trim()
                .parse::<u32>()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| {
                    Error::file(
                        path,
                        format!(
                            "line {line}: {} `{}` is not a positive integer",
                            header[i], f[i]
                        ),
                    )
                })
        };
        let (sh, sw) = (size(4)?, size(5)?);
        if sh as u64 * sw as u64 > MAX_PIXELS {
            return Err(Error::file(
                path,
                format!("line {line}: a {sw}×{sh} segmentation is over {MAX_PIXELS} pixels; Broden's are 112×112 or 113×113"),
            ));
        }
        if f[0].trim().is_empty() {
            return Err(Error::file(path, format!("line {line}: no image")));
        }
        let mut items = Vec::new();
        for cell in &f[INDEX_META.len()..] {
            for item in cell.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                if item.bytes().all(|b| b.is_ascii_digit()) {
                    let n: u32 =
                        item.parse()
                            .ok()
                            .filter(|&n| n <= MAX_LABEL)
                            .ok_or_else(|| {
                                Error::file(
                                    path,
                                    format!("line {line}: label {item} is over {MAX_LABEL}"),
                                )
                            })?;
                    if n != 0 {
                        items.push(Item::Whole(n));
                    }
                } else {
                    items.push(Item::Segmentation(item.to_string()));
                }
            }
        }
        if !items.is_empty() {
            out.push((
                f[0].trim().to_string(),
                Row {
                    line,
                    size: (sw, sh),
                    items,
                },
            ));
        }
    }
    Ok((categories, out))
}

/// Per label number, the index of the category where it covers most pixels, from
/// `c_<category>.csv`, when every category has such a file; `None` otherwise.
fn read_category_coverage(
    root: &Path,
    categories: &[String],
) -> Result<Option<BTreeMap<u32, usize>>> {
    let files: Vec<PathBuf> = categories
        .iter()
        .map(|c| root.join(format!("c_{c}.csv")))
        .collect();
    if !files.iter().all(|f| f.is_file()) {
        return Ok(None);
    }
    // NetDissect-Lite takes the max of (coverage, category position), so ties go to the
    // later category of category.csv; without that file, of the index's header.
    let rank: Vec<usize> = match read_csv(&root.join("category.csv"), "category file") {
        Ok((header, rows)) => {
            let name = column(&root.join("category.csv"), &header, "name")?;
            let listed: Vec<&str> = rows.iter().map(|(_, f)| f[name].trim()).collect();
            categories
                .iter()
                .map(|c| listed.iter().position(|l| l == c).unwrap_or(listed.len()))
                .collect()
        }
        Err(_) => (0..categories.len()).collect(),
    };
    let mut best: BTreeMap<u32, (f64, usize, usize)> = BTreeMap::new();
    for (c, file) in files.iter().enumerate() {
        let (header, rows) = read_csv(file, "category label file")?;
        let (num, cov) = (
            column(file, &header, "number")?,
            column(file, &header, "coverage")?,
        );
        for (line, f) in rows {
            let parsed = (f[num].trim().parse::<u32>(), f[cov].trim().parse::<f64>());
            let (Ok(n), Ok(v)) = parsed else {
                return Err(Error::file(
                    file,
                    format!(
                        "line {line}: number `{}` or coverage `{}` is not a number",
                        f[num], f[cov]
                    ),
                ));
            };
            let entry = best.entry(n).or_insert((v, rank[c], c));
            if v.total_cmp(&entry.0).then(rank[c].cmp(&entry.1)).is_gt() {
                *entry = (v, rank[c], c);
            }
        }
    }
    Ok(Some(
        best.into_iter().map(|(n, (_, _, c))| (n, c)).collect(),
    ))
}

/// The name among `names` with the smallest edit distance to `word`.
fn closest<'a>(word: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names.min_by_key(|n| (edit_distance(word, n), *n))
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LABELS: &str = "number,name,category,frequency,coverage,syns\n\
        1,red,color(5),5,1.0,\n\
        2,dog,object(4);part(1),5,1.0,\n\
        3,beach,scene(2),2,2.0,\n\
        300,ear,part(3);object(3),3,0.1,\n";
    const HEADER: &str = "image,split,ih,iw,sh,sw,color,object,part,scene\n";

    /// A folder with `rows` after the index header, LABELS and a 4×2 image `a.png`.
    fn folder(rows: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir_all(&images).unwrap();
        image::RgbImage::new(4, 2)
            .save(images.join("a.png"))
            .unwrap();
        std::fs::write(dir.path().join("index.csv"), format!("{HEADER}{rows}")).unwrap();
        std::fs::write(dir.path().join("label.csv"), LABELS).unwrap();
        dir
    }

    /// A 4×2 segmentation with label `n` at the listed pixels.
    fn seg(dir: &Path, name: &str, n: u32, at: &[(u32, u32)]) {
        let img = image::RgbImage::from_fn(4, 2, |x, y| {
            let on = at.contains(&(x, y));
            image::Rgb(if on {
                [(n % 256) as u8, (n / 256) as u8, 0]
            } else {
                [0, 0, 0]
            })
        });
        img.save(dir.join("images").join(name)).unwrap();
    }

    fn on(m: &Option<GrayImage>) -> Vec<(u32, u32)> {
        let m = m.as_ref().unwrap();
        m.enumerate_pixels()
            .filter(|(_, _, p)| p.0[0] == 255)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    fn err(dir: &Path) -> String {
        BrodenProbe::open(dir).unwrap_err().to_string()
    }

    #[test]
    fn labels_decode_as_red_plus_256_green_and_several_masks_are_ored() {
        let dir = folder("a.png,train,2,4,2,4,,o1.png;o2.png,p.png,3;0\n");
        seg(dir.path(), "o1.png", 2, &[(0, 0)]);
        seg(dir.path(), "o2.png", 2, &[(3, 1)]);
        seg(dir.path(), "p.png", 300, &[(1, 0), (2, 1)]); // R = 44, G = 1
        let probe = BrodenProbe::open(dir.path()).unwrap();
        assert_eq!(probe.concepts(), ["red", "dog", "beach", "ear"]);
        assert!(probe.images()[0].is_absolute());
        let masks = probe.masks(&probe.images()[0]).unwrap();
        assert!(masks[0].is_none(), "red is absent");
        assert_eq!(
            on(&masks[1]),
            [(0, 0), (3, 1)],
            "the two object PNGs are OR-ed"
        );
        assert_eq!(
            on(&masks[2]).len(),
            8,
            "a whole-image label covers every pixel"
        );
        assert_eq!(on(&masks[3]), [(1, 0), (2, 1)]);
        assert_eq!(masks[3].as_ref().unwrap().dimensions(), (4, 2));
        // The stand-in for CLIP reads the same masks.
        let s = probe.similarities(0, probe.images()).unwrap();
        assert_eq!(s[[0, 0]], 0.0);
        assert!((s[[0, 2]] - 1.0).abs() < 1e-6 && (s[[0, 1]] - 0.625).abs() < 1e-6);
    }

    #[test]
    fn the_primary_category_has_the_largest_count_or_coverage() {
        assert_eq!(
            primary_category("material(36);object(3)").unwrap(),
            "material"
        );
        assert_eq!(primary_category("part(3);object(3)").unwrap(), "part");
        assert_eq!(primary_category("object(1);part(7)").unwrap(), "part");
        assert!(primary_category("object").is_err());
        assert!(primary_category("").is_err());
        let dir = folder("a.png,train,2,4,2,4,1,,,\n");
        let probe = BrodenProbe::open(dir.path()).unwrap();
        assert_eq!(probe.kinds()["dog"], "object");
        assert_eq!(probe.kinds()["ear"], "part", "first listed on equal counts");
        // With c_*.csv for every category, the largest coverage wins (NetDissect-Lite).
        for (cat, rows) in [
            ("color", "1,1,red,5,1.0\n"),
            ("object", "1,2,dog,4,0.2\n2,300,ear,3,0.5\n"),
            ("part", "1,2,dog,1,0.9\n2,300,ear,3,0.5\n"),
            ("scene", "1,3,beach,2,2.0\n"),
        ] {
            std::fs::write(
                dir.path().join(format!("c_{cat}.csv")),
                format!("code,number,name,frequency,coverage\n{rows}"),
            )
            .unwrap();
        }
        let kinds = BrodenProbe::open(dir.path()).unwrap().kinds();
        assert_eq!(kinds["dog"], "part");
        assert_eq!(kinds["ear"], "part", "ties go to the later category");
        std::fs::write(
            dir.path().join("category.csv"),
            "name,first,last,count,frequency\ncolor,1,1,1,1\npart,2,2,1,1\nobject,3,3,1,1\nscene,4,4,1,1\n",
        )
        .unwrap();
        let kinds = BrodenProbe::open(dir.path()).unwrap().kinds();
        assert_eq!(kinds["ear"], "object", "later in category.csv's order");
    }

    #[test]
    fn a_concept_subset_keeps_its_order_and_absent_concepts_are_none() {
        let dir = folder("a.png,train,2,4,2,4,,o.png,,3\n");
        seg(dir.path(), "o.png", 2, &[(1, 1)]);
        let probe = BrodenProbe::open(dir.path())
            .unwrap()
            .with_concepts(&["beach".into(), "red".into(), "dog".into()])
            .unwrap();
        assert_eq!(probe.concepts(), ["beach", "red", "dog"]);
        assert_eq!(probe.kinds().len(), 3);
        let masks = probe.masks(&probe.images()[0]).unwrap();
        assert_eq!(masks.len(), 3);
        assert!(masks[0].is_some() && masks[1].is_none());
        assert_eq!(on(&masks[2]), [(1, 1)]);
        let e = BrodenProbe::open(dir.path())
            .unwrap()
            .with_concepts(&["dgo".into(), "red".into(), "zzzzzzz".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 of 3") && e.contains("`dgo` (closest: `dog`)") && e.contains("zzzzzzz"),
            "{e}"
        );
        // An image not in the index.
        let e = probe
            .masks(Path::new("/nowhere.png"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an image of"), "{e}");
    }

    #[test]
    fn rows_without_labels_are_skipped_and_quoted_fields_are_read() {
        let dir = folder("a.png,train,2,4,2,4,,,,\n\"b.png\",train,2,4,2,4,1,,,\n");
        let probe = BrodenProbe::open(dir.path()).unwrap();
        assert_eq!(probe.images().len(), 1);
        assert!(probe.images()[0].ends_with("images/b.png"));
        assert_eq!(
            split_csv("a,\"b,c\",\"d\"\"e\",").unwrap(),
            ["a", "b,c", "d\"e", ""]
        );
        assert!(split_csv("a,\"b").is_err());
    }

    #[test]
    fn missing_files_and_bad_tables_fail_naming_the_file_and_line() {
        let dir = folder("a.png,train,2,4,2,4,1,,,\n");
        std::fs::remove_file(dir.path().join("label.csv")).unwrap();
        let e = err(dir.path());
        assert!(e.contains("label.csv") && e.contains("cannot read"), "{e}");
        std::fs::remove_file(dir.path().join("index.csv")).unwrap();
        std::fs::write(dir.path().join("label.csv"), LABELS).unwrap();
        let e = err(dir.path());
        assert!(e.contains("index.csv") && e.contains("cannot read"), "{e}");

        let cases: [(&str, &str, &[&str]); 7] = [
            (
                "image,split,sh,sw,color\na.png,train,2,4,1\n",
                LABELS,
                &["index.csv", "bad header"],
            ),
            (
                "image,split,ih,iw,sh,sw,color\na.png,train,2,4,2,4,1\nb.png,train,2,4,2,4\n",
                LABELS,
                &["index.csv", "line 3", "6 fields", "7"],
            ),
            (
                "image,split,ih,iw,sh,sw,color\na.png,train,2,4,2,4,7\n",
                LABELS,
                &["line 2", "label 7"],
            ),
            (
                "image,split,ih,iw,sh,sw,color\na.png,train,2,4,x,4,1\n",
                LABELS,
                &["line 2", "sh `x`"],
            ),
            (
                "image,split,ih,iw,sh,sw,color\na.png,train,2,4,100000,100000,1\n",
                LABELS,
                &["line 2", "over"],
            ),
            (
                "image,split,ih,iw,sh,sw,color\na.png,train,2,4,2,4,1\n",
                "number,name,category\n1,red,color(1)\n1,blue,color(1)\n",
                &["label.csv", "line 3", "number 1 is used twice"],
            ),
            (
                "image,split,ih,iw,sh,sw,color\na.png,train,2,4,2,4,1\n",
                "number,name\n1,red\n",
                &["label.csv", "no `category` column"],
            ),
        ];
        for (index, labels, words) in cases {
            std::fs::write(dir.path().join("index.csv"), index).unwrap();
            std::fs::write(dir.path().join("label.csv"), labels).unwrap();
            let e = err(dir.path());
            assert!(words.iter().all(|w| e.contains(w)), "{e} lacks {words:?}");
        }
        std::fs::write(
            dir.path().join("label.csv"),
            "number,name,category\n1,red,color(1)\n2,blue,colour\n",
        )
        .unwrap();
        let e = err(dir.path());
        assert!(e.contains("line 3") && e.contains("name(count)"), "{e}");
    }

    #[test]
    fn bad_segmentations_fail_when_read_naming_the_file() {
        let dir = folder("a.png,train,2,4,2,4,,o.png,,\n");
        let probe = BrodenProbe::open(dir.path()).unwrap();
        let image = probe.images()[0].clone();
        let masks_err = |p: &BrodenProbe| p.masks(&image).unwrap_err().to_string();
        let e = masks_err(&probe);
        assert!(
            e.contains("o.png") && e.contains("cannot read the segmentation"),
            "{e}"
        );
        std::fs::write(dir.path().join("images/o.png"), b"not a png").unwrap();
        let e = masks_err(&probe);
        assert!(e.contains("o.png") && e.contains("cannot read"), "{e}");
        seg(dir.path(), "o.png", 9, &[(2, 0)]);
        let e = masks_err(&probe);
        assert!(e.contains("pixel (2, 0) has label 9"), "{e}");
        image::RgbImage::new(3, 3)
            .save(dir.path().join("images/o.png"))
            .unwrap();
        let e = masks_err(&probe);
        assert!(e.contains("3×3") && e.contains("4×2"), "{e}");
        image::GrayImage::new(4, 2)
            .save(dir.path().join("images/o.png"))
            .unwrap();
        let e = masks_err(&probe);
        assert!(e.contains("8-bit RGB"), "{e}");
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("dgo", "dog"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("sky", ["skyscraper", "sky-s", "ski"].into_iter()),
            Some("ski")
        );
    }
}
