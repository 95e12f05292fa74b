//! Concept sets: the words a unit can be labelled with.

use std::collections::HashSet;
use std::path::Path;

use crate::{Error, Result};

/// An ordered list of distinct concept names.
///
/// Read from a text file with one concept a line: surrounding whitespace is trimmed, blank
/// lines are skipped and a repeated concept keeps only its first line (compared exactly,
/// after trimming), so every concept has exactly one column in the similarity matrix. (The
/// reference keeps duplicates as separate columns and looks labels up in the unfiltered
/// line list, which misaligns labels after a blank line; we do neither.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConceptSet {
    names: Vec<String>,
    /// Lines dropped as blank.
    pub blank_lines: usize,
    /// Lines dropped as repeats of an earlier concept.
    pub duplicates: usize,
}

impl ConceptSet {
    /// The concepts of `lines`, cleaned as described on the type.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut names = Vec::new();
        let mut seen = HashSet::new();
        let (mut blank_lines, mut duplicates) = (0, 0);
        for line in lines {
            let c = line.trim();
            if c.is_empty() {
                blank_lines += 1;
            } else if seen.insert(c.to_string()) {
                names.push(c.to_string());
            } else {
                duplicates += 1;
            }
        }
        if names.is_empty() {
            return Err(Error::Parameter {
                name: "concepts",
                reason: "the concept set is empty; give one concept a line".into(),
            });
        }
        Ok(Self {
            names,
            blank_lines,
            duplicates,
        })
    }

    /// Reads a concept file (UTF-8, one concept a line).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        Self::from_lines(text.lines()).map_err(|e| Error::file(path, e))
    }

    /// The concept names, in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of concepts.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no concepts (never true for a constructed set).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_and_duplicates_are_dropped_and_counted() {
        let set = ConceptSet::from_lines(["dog", "", " cat ", "dog", "  ", "cat", "bird"]).unwrap();
        assert_eq!(set.names(), ["dog", "cat", "bird"]);
        assert_eq!((set.blank_lines, set.duplicates), (2, 2));
        assert!(ConceptSet::from_lines(["", " "]).is_err());
    }
}
