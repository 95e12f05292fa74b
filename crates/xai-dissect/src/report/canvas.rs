//! A tiny vector scene (rectangles and text) rendered both as SVG and as a PNG, so that the
//! two files of every chart show exactly the same thing.
//!
//! Layout is in logical pixels; the PNG is drawn at [`PNG_ZOOM`] times that size so that the
//! 5×7 bitmap font stays legible, and the SVG declares the same size with a `viewBox`.

use std::fmt::Write as _;

use image::{Rgb, RgbImage};

use super::font;

/// How many PNG pixels one logical pixel becomes.
pub(crate) const PNG_ZOOM: u32 = 2;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Colour(pub(crate) u8, pub(crate) u8, pub(crate) u8);

impl Colour {
    pub(crate) const WHITE: Colour = Colour(255, 255, 255);
    pub(crate) const BLACK: Colour = Colour(0, 0, 0);
    pub(crate) const GREY: Colour = Colour(110, 110, 110);
    pub(crate) const LIGHT: Colour = Colour(225, 225, 225);

    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// A qualitative palette (our own choice of distinguishable colours).
pub(crate) const PALETTE: [Colour; 8] = [
    Colour(52, 101, 164),
    Colour(230, 126, 34),
    Colour(78, 154, 6),
    Colour(204, 0, 0),
    Colour(117, 80, 123),
    Colour(193, 125, 17),
    Colour(6, 152, 154),
    Colour(136, 138, 133),
];

/// Where a text's `x` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

#[derive(Debug, Clone)]
enum Item {
    Rect {
        x: i64,
        y: i64,
        w: u32,
        h: u32,
        fill: Colour,
    },
    /// `y` is the top of the glyphs.
    Text {
        x: i64,
        y: i64,
        scale: u32,
        text: String,
        fill: Colour,
        anchor: Anchor,
    },
}

/// A picture of rectangles and text on a white background.
#[derive(Debug, Clone)]
pub(crate) struct Canvas {
    width: u32,
    height: u32,
    items: Vec<Item>,
}

impl Canvas {
    pub(crate) fn new(width: u32, height: u32) -> Self {
        Self {
            width: width.max(1),
            height: height.max(1),
            items: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn width(&self) -> u32 {
        self.width
    }

    #[cfg(test)]
    pub(crate) fn height(&self) -> u32 {
        self.height
    }

    pub(crate) fn rect(&mut self, x: i64, y: i64, w: u32, h: u32, fill: Colour) {
        if w > 0 && h > 0 {
            self.items.push(Item::Rect { x, y, w, h, fill });
        }
    }

    /// Text whose glyph tops are at `y`; `scale` 1 is 7 logical pixels tall.
    pub(crate) fn text(
        &mut self,
        x: i64,
        y: i64,
        scale: u32,
        text: &str,
        fill: Colour,
        anchor: Anchor,
    ) {
        self.items.push(Item::Text {
            x,
            y,
            scale: scale.max(1),
            text: text.to_string(),
            fill,
            anchor,
        });
    }

    /// The SVG document.
    pub(crate) fn to_svg(&self) -> String {
        let (w, h) = (self.width, self.height);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {w} {h}">"#,
            w * PNG_ZOOM,
            h * PNG_ZOOM
        );
        let _ = writeln!(
            s,
            r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#
        );
        for item in &self.items {
            match item {
                Item::Rect { x, y, w, h, fill } => {
                    let _ = writeln!(
                        s,
                        r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{}"/>"#,
                        fill.hex()
                    );
                }
                Item::Text {
                    x,
                    y,
                    scale,
                    text,
                    fill,
                    anchor,
                } => {
                    // A monospace face at 10 px per scale step has about the bitmap font's
                    // 6 px advance and 7 px cap height, so the SVG's layout matches the PNG's.
                    let anchor = match anchor {
                        Anchor::Start => "start",
                        Anchor::Middle => "middle",
                        Anchor::End => "end",
                    };
                    let _ = writeln!(
                        s,
                        r#"<text x="{x}" y="{}" font-family="monospace" font-size="{}" fill="{}" text-anchor="{anchor}">{}</text>"#,
                        y + i64::from(7 * scale),
                        10 * scale,
                        fill.hex(),
                        xml_escape(text)
                    );
                }
            }
        }
        s.push_str("</svg>\n");
        s
    }

    /// The picture as pixels, [`PNG_ZOOM`] times the logical size.
    pub(crate) fn to_image(&self) -> RgbImage {
        let z = i64::from(PNG_ZOOM);
        let mut img = RgbImage::from_pixel(
            self.width * PNG_ZOOM,
            self.height * PNG_ZOOM,
            Rgb([255, 255, 255]),
        );
        let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
        let put = |img: &mut RgbImage, x: i64, y: i64, c: Colour| {
            if (0..iw).contains(&x) && (0..ih).contains(&y) {
                img.put_pixel(x as u32, y as u32, Rgb([c.0, c.1, c.2]));
            }
        };
        for item in &self.items {
            match item {
                Item::Rect { x, y, w, h, fill } => {
                    let (x0, y0) = ((x * z).max(0), (y * z).max(0));
                    let x1 = ((x + i64::from(*w)) * z).min(iw);
                    let y1 = ((y + i64::from(*h)) * z).min(ih);
                    for py in y0..y1 {
                        for px in x0..x1 {
                            put(&mut img, px, py, *fill);
                        }
                    }
                }
                Item::Text {
                    x,
                    y,
                    scale,
                    text,
                    fill,
                    anchor,
                } => {
                    let s = scale * PNG_ZOOM;
                    let tw = i64::from(font::text_width(text, s));
                    let left = match anchor {
                        Anchor::Start => x * z,
                        Anchor::Middle => x * z - tw / 2,
                        Anchor::End => x * z - tw,
                    };
                    font::for_each_pixel(text, left, y * z, s, |px, py| {
                        put(&mut img, px, py, *fill)
                    });
                }
            }
        }
        img
    }
}

/// Logical width of `text` at `scale`.
pub(crate) fn text_width(text: &str, scale: u32) -> u32 {
    font::text_width(text, scale)
}

/// `text` cut to at most `max` characters, marking the cut with `~`.
pub(crate) fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('~');
        s
    }
}

/// Escapes the five XML special characters.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_and_png_show_the_same_items() {
        let mut c = Canvas::new(40, 20);
        c.rect(5, 5, 10, 4, Colour::BLACK);
        c.text(20, 2, 1, "a<b", Colour::BLACK, Anchor::Start);
        let svg = c.to_svg();
        assert!(svg.contains(r##"<rect x="5" y="5" width="10" height="4" fill="#000000"/>"##));
        assert!(svg.contains(">a&lt;b</text>"));
        let img = c.to_image();
        assert_eq!(img.dimensions(), (80, 40));
        assert_eq!(img.get_pixel(12, 12).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
        let dark = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        // The rectangle alone is 20×8 pixels; the text adds more.
        assert!(dark > 160, "{dark}");
    }

    #[test]
    fn shapes_outside_the_canvas_are_clipped_not_a_panic() {
        let mut c = Canvas::new(10, 10);
        c.rect(-5, -5, 100, 8, Colour::BLACK);
        c.text(8, 8, 3, "overflow", Colour::BLACK, Anchor::End);
        let img = c.to_image();
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
    }

    #[test]
    fn ellipsize_keeps_short_text_and_marks_cuts() {
        assert_eq!(ellipsize("fin", 5), "fin");
        assert_eq!(ellipsize("light-blue", 6), "light~");
    }
}
