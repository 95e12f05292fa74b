//! Montages: a grid of the probe images that activate a unit most, with its label.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{Rgb, RgbImage};

use super::canvas::ellipsize;
use super::font;
use super::{MissingImages, ReportConfig, ReportError};
use crate::label::NeuronLabel;

const GAP: u32 = 6;
const HEADER_H: u32 = 2 * font::GLYPH_H * 2 + 3 * 5;
const CAPTION_H: u32 = font::GLYPH_H + 6;
/// Thumbnails kept in memory while montages are drawn (probe images recur across units).
const CACHE_MAX: usize = 4096;

/// Where the tiles of a montage go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Top-left corner of each tile's image.
    pub(crate) tiles: Vec<(u32, u32)>,
}

/// The layout of `n` tiles of `tile`×`tile` in rows of `columns`, under a header.
pub(crate) fn layout(n: usize, columns: usize, tile: u32) -> Layout {
    let cols = columns.max(1).min(n.max(1)) as u32;
    let rows = (n.max(1) as u32).div_ceil(cols);
    let cell_h = tile + CAPTION_H + GAP;
    let width = GAP + cols * (tile + GAP);
    let height = HEADER_H + rows * cell_h + GAP;
    let tiles = (0..n as u32)
        .map(|i| {
            (
                GAP + (i % cols) * (tile + GAP),
                HEADER_H + (i / cols) * cell_h,
            )
        })
        .collect();
    Layout {
        width,
        height,
        tiles,
    }
}

fn draw_text(img: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32, colour: [u8; 3]) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    font::for_each_pixel(text, i64::from(x), i64::from(y), scale, |px, py| {
        if (0..w).contains(&px) && (0..h).contains(&py) {
            img.put_pixel(px as u32, py as u32, Rgb(colour));
        }
    });
}

/// A grey tile crossed out, for an image that could not be read.
fn placeholder(tile: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(tile, tile, Rgb([160, 160, 160]));
    for i in 0..tile {
        for d in 0..2u32 {
            let j = (i + d).min(tile - 1);
            img.put_pixel(i, j, Rgb([110, 110, 110]));
            img.put_pixel(tile - 1 - i, j, Rgb([110, 110, 110]));
        }
    }
    let text = "missing";
    let tw = font::text_width(text, 1);
    draw_text(
        &mut img,
        text,
        tile.saturating_sub(tw) / 2,
        tile / 2 - 3,
        1,
        [255, 255, 255],
    );
    img
}

/// Reads and shrinks probe images, once each.
#[derive(Debug, Default)]
pub(crate) struct Thumbnails {
    cache: HashMap<PathBuf, Result<RgbImage, String>>,
}

impl Thumbnails {
    /// The image at `path` fitted into `tile`×`tile` (aspect kept), or why it cannot be read.
    fn get(&mut self, path: &Path, tile: u32) -> Result<RgbImage, String> {
        if let Some(hit) = self.cache.get(path) {
            return hit.clone();
        }
        let made = image::open(path).map_err(|e| e.to_string()).map(|img| {
            let img = img.to_rgb8();
            let (w, h) = img.dimensions();
            let k = f64::from(tile) / f64::from(w.max(h).max(1));
            let nw = ((f64::from(w) * k).round() as u32).clamp(1, tile);
            let nh = ((f64::from(h) * k).round() as u32).clamp(1, tile);
            image::imageops::resize(&img, nw, nh, FilterType::Triangle)
        });
        if self.cache.len() < CACHE_MAX {
            self.cache.insert(path.to_path_buf(), made.clone());
        }
        made
    }
}

/// The montage of one unit, and a warning per image drawn as a placeholder.
pub(crate) fn montage(
    label: &NeuronLabel,
    cfg: &ReportConfig,
    thumbs: &mut Thumbnails,
) -> Result<(RgbImage, Vec<String>), ReportError> {
    let tile = cfg.tile_size.max(16);
    let images: Vec<_> = label.top_images.iter().take(cfg.montage_images).collect();
    let lay = layout(images.len(), cfg.montage_columns, tile);
    let mut img = RgbImage::from_pixel(lay.width, lay.height, Rgb([255, 255, 255]));
    let chars = (lay.width.saturating_sub(2 * GAP) / (font::ADVANCE * 2)) as usize;
    let head = format!("{} unit {}", label.layer, label.unit);
    draw_text(&mut img, &ellipsize(&head, chars), GAP, 5, 2, [0, 0, 0]);
    let what = format!("{} {:.3}", label.concept, label.similarity);
    draw_text(
        &mut img,
        &ellipsize(&what, chars),
        GAP,
        10 + font::GLYPH_H * 2,
        2,
        [52, 101, 164],
    );
    if images.is_empty() {
        draw_text(
            &mut img,
            "no top images recorded",
            GAP,
            HEADER_H,
            1,
            [110, 110, 110],
        );
    }
    let mut warnings = Vec::new();
    for (rank, (top, &(x, y))) in images.iter().zip(&lay.tiles).enumerate() {
        let path = match &cfg.image_root {
            Some(root) if top.path.is_relative() => root.join(&top.path),
            _ => top.path.clone(),
        };
        let thumb = match thumbs.get(&path, tile) {
            Ok(t) => t,
            Err(why) => match cfg.missing_images {
                MissingImages::Error => return Err(ReportError::Image { path, reason: why }),
                MissingImages::Placeholder => {
                    warnings.push(format!(
                        "{} unit {}: cannot read top image {}: {why}; drawn as a grey placeholder",
                        label.layer,
                        label.unit,
                        path.display()
                    ));
                    placeholder(tile)
                }
            },
        };
        // Centre the thumbnail in its tile on a light background.
        for yy in 0..tile {
            for xx in 0..tile {
                img.put_pixel(x + xx, y + yy, Rgb([235, 235, 235]));
            }
        }
        let ox = x + (tile - thumb.width()) / 2;
        let oy = y + (tile - thumb.height()) / 2;
        image::imageops::replace(&mut img, &thumb, i64::from(ox), i64::from(oy));
        let cap = format!("{}. {:.3}", rank + 1, top.activation);
        let cap = ellipsize(&cap, (tile / font::ADVANCE) as usize);
        draw_text(&mut img, &cap, x, y + tile + 3, 1, [60, 60, 60]);
    }
    Ok((img, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::TopImage;

    #[test]
    fn tiles_fill_rows_of_the_given_width_without_overlap() {
        let l = layout(7, 3, 50);
        assert_eq!(l.tiles.len(), 7);
        assert_eq!(l.width, GAP + 3 * (50 + GAP));
        assert_eq!(l.tiles[0], (GAP, HEADER_H));
        assert_eq!(l.tiles[3].0, GAP);
        assert!(l.tiles[3].1 >= l.tiles[0].1 + 50 + CAPTION_H);
        for &(x, y) in &l.tiles {
            assert!(x + 50 <= l.width && y + 50 + CAPTION_H <= l.height);
        }
        // Fewer images than columns: the montage is only as wide as it needs.
        assert_eq!(layout(2, 5, 50).width, GAP + 2 * (50 + GAP));
    }

    fn label(paths: Vec<PathBuf>) -> NeuronLabel {
        NeuronLabel {
            layer: "layer4".into(),
            unit: 3,
            concept: "fin".into(),
            similarity: 0.25,
            top_k: vec![],
            top_images: paths
                .into_iter()
                .enumerate()
                .map(|(i, path)| TopImage {
                    index: i,
                    path,
                    activation: 2.0 - i as f32,
                })
                .collect(),
        }
    }

    #[test]
    fn images_are_drawn_and_missing_ones_become_placeholders_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let red = dir.path().join("red.png");
        RgbImage::from_pixel(40, 20, Rgb([255, 0, 0]))
            .save(&red)
            .unwrap();
        let corrupt = dir.path().join("corrupt.png");
        std::fs::write(&corrupt, b"not a png").unwrap();
        let l = label(vec![red, dir.path().join("gone.png"), corrupt]);
        let cfg = ReportConfig {
            tile_size: 40,
            ..ReportConfig::default()
        };
        let (img, warnings) = montage(&l, &cfg, &mut Thumbnails::default()).unwrap();
        let lay = layout(3, cfg.montage_columns, 40);
        assert_eq!(img.dimensions(), (lay.width, lay.height));
        let (x, y) = lay.tiles[0];
        // The 40×20 image is centred vertically in its 40×40 tile.
        assert_eq!(img.get_pixel(x + 20, y + 20).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(x + 20, y + 2).0, [235, 235, 235]);
        let (x, y) = lay.tiles[1];
        assert_eq!(img.get_pixel(x + 5, y + 30).0, [160, 160, 160]);
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("gone.png"), "{warnings:?}");
        let strict = ReportConfig {
            missing_images: MissingImages::Error,
            ..cfg
        };
        let err = montage(&l, &strict, &mut Thumbnails::default()).unwrap_err();
        assert!(err.to_string().contains("gone.png"), "{err}");
    }

    #[test]
    fn a_unit_without_top_images_still_gets_a_header() {
        let (img, w) = montage(
            &label(vec![]),
            &ReportConfig::default(),
            &mut Thumbnails::default(),
        )
        .unwrap();
        assert!(w.is_empty());
        assert!(img.pixels().any(|p| p.0 == [0, 0, 0]));
    }
}
