//! The charts of the reports, laid out on a [`Canvas`] so that each is written as SVG and PNG.

use std::collections::{BTreeMap, BTreeSet};

use super::canvas::{ellipsize, text_width, Anchor, Canvas, Colour, PALETTE};
use super::summary::{kind_group, KindGroup, LayerSummary, NO_KIND};

/// Longest concept label drawn in full; longer ones are cut with `~`.
const MAX_LABEL: usize = 20;
const MARGIN: i64 = 10;
const TITLE_H: i64 = 24;
const PANEL_GAP: i64 = 16;
const PANELS_PER_ROW: usize = 3;

/// A colour per concept kind: the palette in kind order, grey for [`NO_KIND`].
#[derive(Debug, Clone)]
pub(crate) struct KindColours(Vec<(String, Colour)>);

impl KindColours {
    pub(crate) fn new<'a>(kinds: impl IntoIterator<Item = &'a str>) -> Self {
        let set: BTreeSet<&str> = kinds.into_iter().collect();
        let mut out = Vec::new();
        for (i, k) in set.iter().filter(|k| **k != NO_KIND).enumerate() {
            // The last palette entry is grey, kept for NO_KIND.
            out.push((k.to_string(), PALETTE[i % (PALETTE.len() - 1)]));
        }
        if set.contains(NO_KIND) {
            out.push((NO_KIND.to_string(), PALETTE[PALETTE.len() - 1]));
        }
        Self(out)
    }

    fn of(&self, kind: &str) -> Colour {
        self.0
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, c)| *c)
            .unwrap_or(PALETTE[PALETTE.len() - 1])
    }

    fn legend(&self) -> Vec<(String, Colour)> {
        self.0
            .iter()
            .map(|(k, c)| {
                let label = match kind_group(k) {
                    KindGroup::ObjectLike => format!("{k} (object-like)"),
                    KindGroup::SceneLike => format!("{k} (scene-like)"),
                    KindGroup::Other => k.clone(),
                };
                (label, *c)
            })
            .collect()
    }
}

/// Draws a one-line legend starting at `(x, y)`, wrapping at `width`; returns its height.
fn legend(c: &mut Canvas, x: i64, y: i64, width: i64, entries: &[(String, Colour)]) -> i64 {
    let (mut cx, mut cy) = (x, y);
    for (label, colour) in entries {
        let w = 12 + i64::from(text_width(label, 1)) + 14;
        if cx > x && cx + w > x + width {
            cx = x;
            cy += 14;
        }
        c.rect(cx, cy, 8, 8, *colour);
        c.text(cx + 12, cy, 1, label, Colour::BLACK, Anchor::Start);
        cx += w;
    }
    cy - y + 14
}

/// Height of the legend [`legend`] would draw.
fn legend_height(width: i64, entries: &[(String, Colour)]) -> i64 {
    let mut scratch = Canvas::new(1, 1);
    legend(&mut scratch, 0, 0, width, entries)
}

fn label_width(labels: impl Iterator<Item = usize>) -> i64 {
    let chars = labels.max().unwrap_or(1).clamp(1, MAX_LABEL);
    i64::from(text_width(&"m".repeat(chars), 1)) + 8
}

/// Horizontal bars of each layer's most frequent concepts (units per concept), one panel per
/// layer, coloured by kind.
pub(crate) fn concept_frequency(
    title: &str,
    layers: &[LayerSummary],
    kinds: &KindColours,
) -> Canvas {
    const BAR_MAX: i64 = 200;
    const ROW_H: i64 = 12;
    let label_w = label_width(
        layers
            .iter()
            .flat_map(|l| l.top_concepts.iter().map(|c| c.concept.chars().count())),
    );
    let rows = layers
        .iter()
        .map(|l| l.top_concepts.len())
        .max()
        .unwrap_or(0)
        .max(1) as i64;
    let panel_w = label_w + BAR_MAX + 36;
    let panel_h = 18 + rows * ROW_H;
    let cols = layers.len().clamp(1, PANELS_PER_ROW) as i64;
    let grid_rows = layers.len().div_ceil(PANELS_PER_ROW).max(1) as i64;
    let width = (MARGIN * 2 + cols * panel_w + (cols - 1) * PANEL_GAP)
        .max(MARGIN * 2 + i64::from(text_width(title, 2)));
    let entries = kinds.legend();
    let legend_h = legend_height(width - 2 * MARGIN, &entries);
    let height = MARGIN + TITLE_H + grid_rows * (panel_h + PANEL_GAP) + legend_h + MARGIN;
    let mut c = Canvas::new(width as u32, height as u32);
    c.text(MARGIN, MARGIN, 2, title, Colour::BLACK, Anchor::Start);
    for (i, l) in layers.iter().enumerate() {
        let px = MARGIN + (i as i64 % cols) * (panel_w + PANEL_GAP);
        let py = MARGIN + TITLE_H + (i as i64 / cols) * (panel_h + PANEL_GAP);
        let head = format!("{} ({} units)", l.layer, l.units);
        c.text(
            px,
            py,
            1,
            &ellipsize(&head, (panel_w / 6) as usize),
            Colour::BLACK,
            Anchor::Start,
        );
        let max = l
            .top_concepts
            .iter()
            .map(|t| t.units)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let x0 = px + label_w;
        c.rect(x0 - 1, py + 14, 1, (rows * ROW_H) as u32, Colour::GREY);
        if l.top_concepts.is_empty() {
            c.text(x0 + 4, py + 16, 1, "no units", Colour::GREY, Anchor::Start);
        }
        for (r, t) in l.top_concepts.iter().enumerate() {
            let y = py + 16 + r as i64 * ROW_H;
            c.text(
                x0 - 4,
                y,
                1,
                &ellipsize(&t.concept, MAX_LABEL),
                Colour::BLACK,
                Anchor::End,
            );
            let w = ((t.units as f64 / max) * BAR_MAX as f64).round().max(1.0) as u32;
            c.rect(x0, y - 1, w, 9, kinds.of(&t.kind));
            c.text(
                x0 + i64::from(w) + 3,
                y,
                1,
                &t.units.to_string(),
                Colour::BLACK,
                Anchor::Start,
            );
        }
    }
    let ly = MARGIN + TITLE_H + grid_rows * (panel_h + PANEL_GAP);
    legend(&mut c, MARGIN, ly, width - 2 * MARGIN, &entries);
    c
}

/// One stacked bar per row (a layer, or a model's layer): the share of its units per kind.
pub(crate) fn kind_shares(
    title: &str,
    rows: &[(String, &BTreeMap<String, f64>)],
    kinds: &KindColours,
) -> Canvas {
    const BAR_W: i64 = 300;
    const ROW_H: i64 = 16;
    let label_w = rows
        .iter()
        .map(|(l, _)| i64::from(text_width(&ellipsize(l, 32), 1)))
        .max()
        .unwrap_or(0)
        + 8;
    let width =
        (MARGIN * 2 + label_w + BAR_W + 20).max(MARGIN * 2 + i64::from(text_width(title, 2)));
    let entries = kinds.legend();
    let legend_h = legend_height(width - 2 * MARGIN, &entries);
    let plot_h = rows.len().max(1) as i64 * ROW_H;
    let height = MARGIN + TITLE_H + plot_h + 16 + legend_h + MARGIN;
    let mut c = Canvas::new(width as u32, height as u32);
    c.text(MARGIN, MARGIN, 2, title, Colour::BLACK, Anchor::Start);
    let x0 = MARGIN + label_w;
    let top = MARGIN + TITLE_H;
    for t in 0..=4 {
        let x = x0 + BAR_W * t / 4;
        c.rect(x, top, 1, plot_h as u32, Colour::LIGHT);
        c.text(
            x,
            top + plot_h + 4,
            1,
            &format!("{}%", t * 25),
            Colour::GREY,
            Anchor::Middle,
        );
    }
    for (r, (label, shares)) in rows.iter().enumerate() {
        let y = top + r as i64 * ROW_H + 3;
        c.text(
            x0 - 4,
            y + 2,
            1,
            &ellipsize(label, 32),
            Colour::BLACK,
            Anchor::End,
        );
        let mut x = x0;
        let mut acc = 0.0;
        for (kind, share) in shares.iter() {
            // Cumulative rounding, so the segments of a full bar end exactly at 100%.
            let end = x0 + ((acc + share) * BAR_W as f64).round() as i64;
            acc += share;
            let w = (end - x).max(0);
            c.rect(x, y, w as u32, 11, kinds.of(kind));
            let pct = format!("{:.0}%", share * 100.0);
            if w >= i64::from(text_width(&pct, 1)) + 4 {
                c.text(x + w / 2, y + 2, 1, &pct, Colour::WHITE, Anchor::Middle);
            }
            x = end;
        }
    }
    legend(
        &mut c,
        MARGIN,
        top + plot_h + 16,
        width - 2 * MARGIN,
        &entries,
    );
    c
}

/// A concept's share of units in one layer of model A and of model B.
#[derive(Debug, Clone)]
pub(crate) struct PairedBar {
    pub(crate) concept: String,
    pub(crate) a: f64,
    pub(crate) b: f64,
}

/// Per layer, the top concepts of A and of B as pairs of bars (share of the layer's units).
pub(crate) fn compare_top(
    title: &str,
    layers: &[(String, Vec<PairedBar>)],
    names: [&str; 2],
) -> Canvas {
    const BAR_MAX: i64 = 180;
    const ROW_H: i64 = 18;
    const COLOURS: [Colour; 2] = [PALETTE[0], PALETTE[1]];
    let label_w = label_width(
        layers
            .iter()
            .flat_map(|(_, bars)| bars.iter().map(|b| b.concept.chars().count())),
    );
    let rows = layers
        .iter()
        .map(|(_, b)| b.len())
        .max()
        .unwrap_or(0)
        .max(1) as i64;
    let panel_w = label_w + BAR_MAX + 40;
    let panel_h = 18 + rows * ROW_H;
    let cols = layers.len().clamp(1, PANELS_PER_ROW) as i64;
    let grid_rows = layers.len().div_ceil(PANELS_PER_ROW).max(1) as i64;
    let width = (MARGIN * 2 + cols * panel_w + (cols - 1) * PANEL_GAP)
        .max(MARGIN * 2 + i64::from(text_width(title, 2)));
    let entries = vec![
        (format!("A: {}", names[0]), COLOURS[0]),
        (format!("B: {}", names[1]), COLOURS[1]),
    ];
    let legend_h = legend_height(width - 2 * MARGIN, &entries);
    let height = MARGIN + TITLE_H + grid_rows * (panel_h + PANEL_GAP) + legend_h + MARGIN;
    let mut c = Canvas::new(width as u32, height as u32);
    c.text(MARGIN, MARGIN, 2, title, Colour::BLACK, Anchor::Start);
    for (i, (layer, bars)) in layers.iter().enumerate() {
        let px = MARGIN + (i as i64 % cols) * (panel_w + PANEL_GAP);
        let py = MARGIN + TITLE_H + (i as i64 / cols) * (panel_h + PANEL_GAP);
        c.text(
            px,
            py,
            1,
            &format!("{layer} (% of units)"),
            Colour::BLACK,
            Anchor::Start,
        );
        let max = bars
            .iter()
            .map(|b| b.a.max(b.b))
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let x0 = px + label_w;
        c.rect(x0 - 1, py + 14, 1, (rows * ROW_H) as u32, Colour::GREY);
        for (r, bar) in bars.iter().enumerate() {
            let y = py + 16 + r as i64 * ROW_H;
            c.text(
                x0 - 4,
                y + 4,
                1,
                &ellipsize(&bar.concept, MAX_LABEL),
                Colour::BLACK,
                Anchor::End,
            );
            for (k, v) in [bar.a, bar.b].into_iter().enumerate() {
                let yy = y + k as i64 * 8;
                let w = ((v / max) * BAR_MAX as f64).round() as u32;
                c.rect(x0, yy, w, 7, COLOURS[k]);
                c.text(
                    x0 + i64::from(w) + 3,
                    yy,
                    1,
                    &format!("{:.0}%", v * 100.0),
                    COLOURS[k],
                    Anchor::Start,
                );
            }
        }
    }
    let ly = MARGIN + TITLE_H + grid_rows * (panel_h + PANEL_GAP);
    legend(&mut c, MARGIN, ly, width - 2 * MARGIN, &entries);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::summarize;
    use crate::report::testing::testworld_dissection;

    fn non_white(img: &image::RgbImage) -> usize {
        img.pixels().filter(|p| p.0 != [255, 255, 255]).count()
    }

    #[test]
    fn concept_frequency_grows_with_the_layers_and_draws_every_bar() {
        let d = testworld_dissection("testworld-objects", 0);
        let s = summarize(&d, 8);
        let kinds = KindColours::new(d.concept_kinds.values().map(String::as_str));
        let one = concept_frequency("t", &s.layers[..1], &kinds);
        let three = concept_frequency("t", &s.layers, &kinds);
        assert!(three.width() > one.width());
        let img = three.to_image();
        assert_eq!(img.dimensions(), (three.width() * 2, three.height() * 2));
        assert!(non_white(&img) > 2000);
        let svg = three.to_svg();
        let bars = s.layers.iter().map(|l| l.top_concepts.len()).sum::<usize>();
        // A bar and a label per concept, plus axes and legend swatches.
        assert!(svg.matches("<rect").count() > bars);
        assert!(svg.contains(&s.layers[0].top_concepts[0].concept));
    }

    #[test]
    fn a_full_stacked_bar_is_exactly_the_bar_width() {
        let mut shares = BTreeMap::new();
        shares.insert("part".to_string(), 1.0 / 3.0);
        shares.insert("scene".to_string(), 1.0 / 3.0);
        shares.insert("colour".to_string(), 1.0 / 3.0);
        let kinds = KindColours::new(shares.keys().map(String::as_str));
        let c = kind_shares("k", &[("layer4".into(), &shares)], &kinds);
        let svg = c.to_svg();
        let widths: i64 = svg
            .lines()
            .filter(|l| l.contains("height=\"11\""))
            .filter_map(|l| {
                l.split("width=\"")
                    .nth(1)?
                    .split('"')
                    .next()?
                    .parse::<i64>()
                    .ok()
            })
            .sum();
        assert_eq!(widths, 300);
        assert!(non_white(&c.to_image()) > 300 * 11 * 4);
    }

    #[test]
    fn paired_bars_scale_to_the_largest_share() {
        let bars = vec![
            PairedBar {
                concept: "fin".into(),
                a: 0.5,
                b: 0.25,
            },
            PairedBar {
                concept: "water".into(),
                a: 0.0,
                b: 0.1,
            },
        ];
        let c = compare_top("c", &[("layer4".into(), bars)], ["a", "b"]);
        let svg = c.to_svg();
        assert!(svg.contains(r#"width="180" height="7""#));
        assert!(svg.contains(r#"width="90" height="7""#));
        assert!(svg.contains(">A: a</text>"));
    }
}
