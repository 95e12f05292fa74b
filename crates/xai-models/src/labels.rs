//! Class names: ImageNet-1k built in, Places365 and plain text files.

use std::borrow::Cow;
use std::path::Path;

use crate::{Error, Result};

const IMAGENET_CLASSES: &str = include_str!("../data/imagenet_classes.txt");

/// The names of a model's output classes.
///
/// ```
/// let labels = xai_models::Labels::imagenet();
/// assert_eq!(labels.len(), 1000);
/// assert_eq!(labels.name(1), "goldfish");
/// assert_eq!(xai_models::Labels::numbered(3).name(2), "class 2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    names: Vec<String>,
}

impl Labels {
    /// Labels from a list of names, index = position.
    pub fn new(names: Vec<String>) -> Self {
        Self { names }
    }

    /// The 1000 ImageNet-1k class names, in torchvision's order and spelling.
    pub fn imagenet() -> Self {
        Self::new(IMAGENET_CLASSES.lines().map(str::to_string).collect())
    }

    /// `n` labels named `class 0`, `class 1`, …, for models without a label set.
    pub fn numbered(n: usize) -> Self {
        Self::new((0..n).map(|i| format!("class {i}")).collect())
    }

    /// Reads labels from a text file.
    ///
    /// Two formats are understood: one name per line (blank lines ignored), and the Places365
    /// `categories_places365.txt` format (`/a/airfield 0`), where the name is the first field
    /// less its `/x/` prefix and the second field is the index.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text).map_err(|reason| Error::Labels {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the text of a label file (see [`from_file`](Labels::from_file)).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return Err("the file holds no labels".into());
        }
        let places = lines.iter().all(|l| {
            let mut f = l.split_whitespace();
            matches!((f.next(), f.next(), f.next()), (Some(n), Some(i), None)
                if n.starts_with('/') && n.len() > 3 && i.parse::<usize>().is_ok())
        });
        if !places {
            return Ok(Self::new(lines.iter().map(|l| l.to_string()).collect()));
        }
        let mut names = vec![None; lines.len()];
        for (lineno, l) in lines.iter().enumerate() {
            let mut f = l.split_whitespace();
            let (Some(raw), Some(idx)) = (f.next(), f.next()) else {
                continue;
            };
            let idx: usize = idx
                .parse()
                .map_err(|_| format!("line {}: bad index", lineno + 1))?;
            let slot = names
                .get_mut(idx)
                .ok_or_else(|| format!("line {}: index {idx} out of range", lineno + 1))?;
            if slot.is_some() {
                return Err(format!("line {}: index {idx} appears twice", lineno + 1));
            }
            *slot = Some(raw[3..].to_string());
        }
        names
            .into_iter()
            .enumerate()
            .map(|(i, n)| n.ok_or_else(|| format!("no label for index {i}")))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Self::new)
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of class `index`, or `class {index}` when it is out of range.
    pub fn name(&self, index: usize) -> Cow<'_, str> {
        match self.names.get(index) {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("class {index}")),
        }
    }

    /// All names, index = position.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_format_strips_prefix_and_keeps_slashes() {
        let l = Labels::parse("/a/airfield 0\n/a/apartment_building/outdoor 1\n").unwrap();
        assert_eq!(l.names(), &["airfield", "apartment_building/outdoor"]);
    }

    #[test]
    fn plain_format_one_per_line() {
        let l = Labels::parse("cat\n\ndog house\n").unwrap();
        assert_eq!(l.names(), &["cat", "dog house"]);
        assert!(Labels::parse("\n \n").is_err());
    }

    #[test]
    fn imagenet_is_complete() {
        let l = Labels::imagenet();
        assert_eq!(l.len(), 1000);
        assert_eq!(l.name(0), "tench");
        assert_eq!(l.name(999), "toilet tissue");
    }
}
