//! Seeded, deterministic RGB scenes with ground truth.
//!
//! A [`Scene`] is a textured background of one [`SceneKind`] (water, grass, sand, sky, brick,
//! snow), a few small geometric *distractors* (squares, triangles, thin lines in grey, black and
//! purple, which are not any object kind), and one to a few foreground objects of an
//! [`ObjectKind`] drawn from parts (a goldfish is a body, a tail, fins and an eye). The first,
//! largest object is the *main* object: its kind is the class label [`Scene::object`], it is
//! drawn last and is always fully visible. Extra objects are of other kinds and smaller.
//!
//! Every pixel knows what painted it, so a scene carries exact masks of each object
//! [`Instance`] and of every [`Concept`] — colours (`"orange"`), parts (`"fin"`), textures
//! (`"stripes"`, `"waves"`) and scene kinds (`"water"`) — present in the image.
//!
//! Geometry is generated in normalised units (the shorter image side is 1) and rendered by
//! testing each pixel centre against continuous shapes, so the same seed at 128×128 and at
//! 224×224 gives the same scene at two resolutions. Only integer arithmetic, IEEE `f32`
//! arithmetic, `floor`/`round`, `sqrt`, `sin` and `cos` are used, and random numbers come from
//! [`StdRng::seed_from_u64`], so the same seed and [`SceneConfig`] give byte-identical images
//! and masks on every machine.
//!
//! ```
//! use xai_testworld::{ObjectKind, Scene, SceneConfig, SceneKind};
//!
//! let config = SceneConfig::default();
//! let scene = Scene::generate_with(3, &config, Some(ObjectKind::Goldfish), Some(SceneKind::Water))?;
//! assert_eq!(scene.object, ObjectKind::Goldfish);
//! let fish = scene.object_mask();
//! let fins = &scene.concepts[&xai_testworld::Concept::from_name("fin")?];
//! assert!(fins.count() > 0 && fins.iou(&fish) < 1.0);
//! # Ok::<(), xai_testworld::scene::SceneError>(())
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::f32::consts::PI;
use std::fmt;
use std::str::FromStr;

use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Errors from parsing names and from invalid [`SceneConfig`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SceneError {
    /// A name that is not an [`ObjectKind`].
    #[error("unknown object kind `{name}`; known: {known}")]
    UnknownObjectKind {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A name that is not a [`SceneKind`].
    #[error("unknown scene kind `{name}`; known: {known}")]
    UnknownSceneKind {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A name that is not in [`all_concepts`].
    #[error("unknown concept `{name}`; known: {known}")]
    UnknownConcept {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A [`SceneConfig`] field out of range.
    #[error("invalid scene config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The field (or fields) at fault.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// The main object covered no pixel centre (only possible for degenerate configurations).
    #[error("scene {seed}: the main object covers no pixel at {width}×{height}")]
    EmptyObject {
        /// The seed.
        seed: u64,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
}

// ---------------------------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------------------------

macro_rules! kind_impls {
    ($ty:ident, $err:ident, $n:expr, $example:literal, [$($var:ident => $s:literal),+ $(,)?]) => {
        impl $ty {
            /// Every kind, in [`index`](Self::index) order.
            pub const ALL: [Self; $n] = [$(Self::$var),+];

            /// The lower-case name, e.g. `
            #[doc = $example]
            /// `.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$var => $s),+
                }
            }

            /// Parses a name as written by [`name`](Self::name) (ASCII case and surrounding
            /// whitespace are ignored); an unknown name gives an error listing the known ones.
            pub fn from_name(name: &str) -> Result<Self, SceneError> {
                let key = name.trim();
                Self::ALL
                    .into_iter()
                    .find(|k| k.name().eq_ignore_ascii_case(key))
                    .ok_or_else(|| SceneError::$err {
                        name: name.to_string(),
                        known: Self::ALL.map(Self::name).join(", "),
                    })
            }

            /// The position in [`ALL`](Self::ALL): the class index.
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = SceneError;
            fn from_str(s: &str) -> Result<Self, SceneError> {
                Self::from_name(s)
            }
        }
    };
}

/// The background kind of a scene: a procedural texture, the label of the scene classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SceneKind {
    /// Blue with wavy bands, light crests and noise.
    Water,
    /// Green blades and patches.
    Grass,
    /// Beige with ripples and brown speckles.
    Sand,
    /// A blue gradient with white clouds.
    Sky,
    /// Red-brown bricks in courses with grey mortar.
    Brick,
    /// White and grey drifts with flakes.
    Snow,
}

kind_impls!(SceneKind, UnknownSceneKind, 6, "water", [
    Water => "water",
    Grass => "grass",
    Sand => "sand",
    Sky => "sky",
    Brick => "brick",
    Snow => "snow",
]);

/// The kind of a foreground object, drawn from parts: the label of the object classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// Orange/gold/red body ellipse, forked tail, fins and an eye.
    Goldfish,
    /// A disc in red, blue, yellow, orange or green, with stripes or dots.
    Ball,
    /// A five-pointed yellow or orange star.
    Star,
    /// Petals around a centre, on a green stem.
    Flower,
    /// Walls, a triangular roof, a chimney, a door and windows.
    House,
    /// A side-view car body with light-blue windows and two black wheels.
    Car,
    /// A green, brown, orange or yellow leaf with veins and a stalk.
    Leaf,
    /// A half-ellipse cap (red with white dots, or brown/orange) on a beige stem.
    Mushroom,
}

kind_impls!(ObjectKind, UnknownObjectKind, 8, "goldfish", [
    Goldfish => "goldfish",
    Ball => "ball",
    Star => "star",
    Flower => "flower",
    House => "house",
    Car => "car",
    Leaf => "leaf",
    Mushroom => "mushroom",
]);

// ---------------------------------------------------------------------------------------------
// Concepts
// ---------------------------------------------------------------------------------------------

/// The family of a [`Concept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConceptKind {
    /// A colour name (`"red"`, `"light-blue"`).
    Colour,
    /// An object part (`"fin"`, `"wheel"`).
    Part,
    /// A texture, on objects (`"stripes"`, `"dots"`) or backgrounds (`"waves"`, `"bricks"`).
    Texture,
    /// A scene kind (`"water"`), covering the visible background.
    Scene,
}

impl ConceptKind {
    /// The lower-case name: `"colour"`, `"part"`, `"texture"` or `"scene"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Colour => "colour",
            Self::Part => "part",
            Self::Texture => "texture",
            Self::Scene => "scene",
        }
    }
}

/// A named visual concept with a per-pixel ground-truth mask in every [`Scene`].
///
/// Ordered by kind (colours, parts, textures, scenes), then by name: the order of
/// [`all_concepts`] and of [`Scene::concepts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Concept {
    /// The lower-case name, unique in [`all_concepts`].
    pub name: &'static str,
    /// The family.
    pub kind: ConceptKind,
}

impl Ord for Concept {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.kind, self.name).cmp(&(other.kind, other.name))
    }
}

impl PartialOrd for Concept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Concept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Concept {
    /// The concept of [`all_concepts`] with this name (ASCII case ignored).
    pub fn from_name(name: &str) -> Result<Concept, SceneError> {
        let key = name.trim();
        VOCAB
            .iter()
            .copied()
            .find(|c| c.name.eq_ignore_ascii_case(key))
            .ok_or_else(|| SceneError::UnknownConcept {
                name: name.to_string(),
                known: VOCAB.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
            })
    }
}

/// The fixed, ordered concept vocabulary: 13 colours, 15 parts, 8 textures and the 6 scene
/// kinds, sorted as [`Concept`]'s `Ord` sorts them.
pub fn all_concepts() -> Vec<Concept> {
    VOCAB.to_vec()
}

/// Internal concept ids: positions in [`VOCAB`], bit positions in the per-pixel concept sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Cid {
    Beige,
    Black,
    Blue,
    Brown,
    Green,
    Grey,
    LightBlue,
    Orange,
    Pink,
    Purple,
    Red,
    White,
    Yellow,
    Body,
    Cap,
    Centre,
    Chimney,
    Door,
    Eye,
    Fin,
    Petal,
    Roof,
    Stem,
    Tail,
    Vein,
    Wall,
    Wheel,
    Window,
    Blades,
    Bricks,
    Clouds,
    Dots,
    Flakes,
    Ripples,
    Stripes,
    Waves,
    SBrick,
    SGrass,
    SSand,
    SSky,
    SSnow,
    SWater,
}

const fn con(name: &'static str, kind: ConceptKind) -> Concept {
    Concept { name, kind }
}

const VOCAB: [Concept; 42] = {
    use ConceptKind::{Colour as C, Part as P, Scene as S, Texture as T};
    [
        con("beige", C),
        con("black", C),
        con("blue", C),
        con("brown", C),
        con("green", C),
        con("grey", C),
        con("light-blue", C),
        con("orange", C),
        con("pink", C),
        con("purple", C),
        con("red", C),
        con("white", C),
        con("yellow", C),
        con("body", P),
        con("cap", P),
        con("centre", P),
        con("chimney", P),
        con("door", P),
        con("eye", P),
        con("fin", P),
        con("petal", P),
        con("roof", P),
        con("stem", P),
        con("tail", P),
        con("vein", P),
        con("wall", P),
        con("wheel", P),
        con("window", P),
        con("blades", T),
        con("bricks", T),
        con("clouds", T),
        con("dots", T),
        con("flakes", T),
        con("ripples", T),
        con("stripes", T),
        con("waves", T),
        con("brick", S),
        con("grass", S),
        con("sand", S),
        con("sky", S),
        con("snow", S),
        con("water", S),
    ]
};

fn bit(c: Cid) -> u64 {
    1u64 << (c as u8)
}

fn scene_cid(kind: SceneKind) -> Cid {
    match kind {
        SceneKind::Water => Cid::SWater,
        SceneKind::Grass => Cid::SGrass,
        SceneKind::Sand => Cid::SSand,
        SceneKind::Sky => Cid::SSky,
        SceneKind::Brick => Cid::SBrick,
        SceneKind::Snow => Cid::SSnow,
    }
}

// ---------------------------------------------------------------------------------------------
// Mask
// ---------------------------------------------------------------------------------------------

/// A binary per-pixel mask, row-major.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mask {
    width: u32,
    height: u32,
    bits: Vec<bool>,
}

impl Mask {
    /// An empty (all-false) mask.
    pub fn new(width: u32, height: u32) -> Mask {
        Mask {
            width,
            height,
            bits: vec![false; width as usize * height as usize],
        }
    }

    /// A mask with `f(x, y)` at each pixel.
    pub fn from_fn(width: u32, height: u32, mut f: impl FnMut(u32, u32) -> bool) -> Mask {
        let mut bits = Vec::with_capacity(width as usize * height as usize);
        for y in 0..height {
            for x in 0..width {
                bits.push(f(x, y));
            }
        }
        Mask {
            width,
            height,
            bits,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The value at `(x, y)`; `false` outside the mask.
    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.bits[self.index(x, y)]
    }

    /// Sets the value at `(x, y)`.
    ///
    /// # Panics
    ///
    /// If `(x, y)` is outside the mask.
    pub fn set(&mut self, x: u32, y: u32, value: bool) {
        assert!(
            x < self.width && y < self.height,
            "Mask::set({x}, {y}) outside {}×{}",
            self.width,
            self.height
        );
        let i = self.index(x, y);
        self.bits[i] = value;
    }

    fn index(&self, x: u32, y: u32) -> usize {
        y as usize * self.width as usize + x as usize
    }

    /// The number of set pixels.
    pub fn count(&self) -> usize {
        self.bits.iter().filter(|&&b| b).count()
    }

    /// Whether no pixel is set.
    pub fn is_empty(&self) -> bool {
        !self.bits.iter().any(|&b| b)
    }

    /// Intersection over union with `other`, in `[0, 1]`; 0 when both are empty or the sizes
    /// differ.
    pub fn iou(&self, other: &Mask) -> f32 {
        if self.width != other.width || self.height != other.height {
            return 0.0;
        }
        let (mut inter, mut union) = (0usize, 0usize);
        for (&a, &b) in self.bits.iter().zip(&other.bits) {
            inter += usize::from(a && b);
            union += usize::from(a || b);
        }
        if union == 0 {
            0.0
        } else {
            inter as f32 / union as f32
        }
    }

    /// Sets every pixel set in `other` (same size; extra pixels of a bigger mask are ignored).
    pub fn union_with(&mut self, other: &Mask) {
        for y in 0..self.height.min(other.height) {
            for x in 0..self.width.min(other.width) {
                if other.get(x, y) {
                    self.set(x, y, true);
                }
            }
        }
    }

    /// The row-major pixel values.
    pub fn as_slice(&self) -> &[bool] {
        &self.bits
    }

    /// The row-major pixel values, by value.
    pub fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        self.bits.iter().copied()
    }

    /// A grey image: 255 where set, 0 elsewhere.
    pub fn to_gray_image(&self) -> GrayImage {
        GrayImage::from_fn(self.width, self.height, |x, y| {
            Luma([if self.get(x, y) { 255 } else { 0 }])
        })
    }

    /// The bounding box `(x0, y0, x1, y1)` (exclusive ends) of the set pixels, if any.
    pub fn bbox(&self) -> Option<(u32, u32, u32, u32)> {
        let mut b: Option<(u32, u32, u32, u32)> = None;
        for y in 0..self.height {
            for x in 0..self.width {
                if self.bits[self.index(x, y)] {
                    b = Some(match b {
                        None => (x, y, x + 1, y + 1),
                        Some((x0, y0, x1, y1)) => {
                            (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1))
                        }
                    });
                }
            }
        }
        b
    }
}

// ---------------------------------------------------------------------------------------------
// Config, scene
// ---------------------------------------------------------------------------------------------

/// Settings of [`Scene::generate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SceneConfig {
    /// Image width in pixels (16 to 8192; default 224).
    pub width: u32,
    /// Image height in pixels (16 to 8192; default 224).
    pub height: u32,
    /// Fewest objects, main object included (at least 1; default 1).
    pub min_objects: usize,
    /// Most objects, main object included (1 to 32; default 2).
    pub max_objects: usize,
    /// Small geometric clutter shapes (squares, triangles, thin lines in grey, black and
    /// purple) drawn behind the objects (at most 1000; default 6).
    pub distractors: usize,
    /// The range of the main object's size as a fraction of the shorter image side
    /// (`0.05 <= min <= max <= 1`; default `(0.35, 0.6)`). The main object must be at least 8
    /// pixels across.
    pub object_scale: (f32, f32),
}

impl Default for SceneConfig {
    fn default() -> Self {
        SceneConfig {
            width: 224,
            height: 224,
            min_objects: 1,
            max_objects: 2,
            distractors: 6,
            object_scale: (0.35, 0.6),
        }
    }
}

const MIN_SIZE: u32 = 16;
const MAX_SIZE: u32 = 8192;
const MAX_OBJECTS: usize = 32;
const MAX_DISTRACTORS: usize = 1000;

impl SceneConfig {
    /// Checks every field; the error names the field, the value and the valid range.
    pub fn validate(&self) -> Result<(), SceneError> {
        let bad = |field: &'static str, value: String, reason: &str| {
            Err(SceneError::InvalidConfig {
                field,
                value,
                reason: reason.to_string(),
            })
        };
        for (field, v) in [("width", self.width), ("height", self.height)] {
            if !(MIN_SIZE..=MAX_SIZE).contains(&v) {
                return bad(
                    field,
                    v.to_string(),
                    "image sides must be 16 to 8192 pixels",
                );
            }
        }
        if self.min_objects == 0 {
            return bad(
                "min_objects",
                "0".into(),
                "a scene always has its main object: use at least 1",
            );
        }
        if self.max_objects == 0 || self.max_objects > MAX_OBJECTS {
            return bad(
                "max_objects",
                self.max_objects.to_string(),
                "must be 1 to 32",
            );
        }
        if self.min_objects > self.max_objects {
            return bad(
                "min_objects, max_objects",
                format!("{}, {}", self.min_objects, self.max_objects),
                "min_objects must not exceed max_objects",
            );
        }
        if self.distractors > MAX_DISTRACTORS {
            return bad(
                "distractors",
                self.distractors.to_string(),
                "must be at most 1000",
            );
        }
        let (lo, hi) = self.object_scale;
        if !(lo.is_finite() && hi.is_finite() && 0.05 <= lo && lo <= hi && hi <= 1.0) {
            return bad(
                "object_scale",
                format!("({lo}, {hi})"),
                "must be (min, max) fractions of the shorter side with 0.05 <= min <= max <= 1",
            );
        }
        let short = self.width.min(self.height) as f32;
        if lo * short < 8.0 {
            return bad(
                "object_scale",
                format!("({lo}, {hi})"),
                &format!(
                    "the main object would be {:.1} pixels across at {}×{}; at least 8 are needed",
                    lo * short,
                    self.width,
                    self.height
                ),
            );
        }
        Ok(())
    }
}

/// One drawn object.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its visible pixels: the pixels it painted, minus those painted later by another object.
    pub mask: Mask,
    /// The bounding box `(x0, y0, x1, y1)` of the mask, exclusive ends.
    pub bbox: (u32, u32, u32, u32),
}

/// A generated scene with its ground truth.
#[derive(Debug, Clone)]
pub struct Scene {
    /// The seed it was generated from.
    pub seed: u64,
    /// The rendered RGB image.
    pub image: RgbImage,
    /// The background kind: the scene label.
    pub scene: SceneKind,
    /// The kind of the main object (the largest, drawn last, fully visible): the object label.
    pub object: ObjectKind,
    /// The visible objects, main object first.
    pub instances: Vec<Instance>,
    /// The mask of every concept with at least one pixel, in [`Concept`] order. A scene-kind
    /// concept covers the background pixels not covered by objects or distractors.
    pub concepts: BTreeMap<Concept, Mask>,
}

#[derive(Clone, Copy)]
struct Layers {
    distractors: bool,
    objects: bool,
}

impl Scene {
    /// Generates the scene of `seed`, with random object and scene kinds (uniform).
    ///
    /// The same seed and config give the same scene, byte for byte, on every machine; it is
    /// the scene [`generate_with`](Self::generate_with) gives with no forced kinds.
    ///
    /// ```
    /// use xai_testworld::{Scene, SceneConfig};
    ///
    /// let config = SceneConfig::default();
    /// let scene = Scene::generate(42, &config)?;
    /// assert_eq!(scene.image.dimensions(), (224, 224));
    /// assert_eq!(scene.instances[0].kind, scene.object);
    /// assert!(scene.object_mask().count() > 0);
    /// // seeded: generating again gives the same image
    /// assert_eq!(Scene::generate(42, &config)?.image, scene.image);
    /// # Ok::<(), xai_testworld::scene::SceneError>(())
    /// ```
    pub fn generate(seed: u64, config: &SceneConfig) -> Result<Scene, SceneError> {
        Self::generate_with(seed, config, None, None)
    }

    /// Generates the scene of `seed` with the main object's kind and/or the scene kind forced
    /// (e.g. a goldfish on water); `None` draws that kind at random as
    /// [`generate`](Self::generate) does. Forcing one kind leaves the rest of the layout
    /// drawn from the same random streams.
    pub fn generate_with(
        seed: u64,
        config: &SceneConfig,
        object: Option<ObjectKind>,
        scene: Option<SceneKind>,
    ) -> Result<Scene, SceneError> {
        build(
            seed,
            config,
            object,
            scene,
            Layers {
                distractors: true,
                objects: true,
            },
        )
    }

    /// The union of the masks of all instances of the main object's kind.
    pub fn object_mask(&self) -> Mask {
        let mut m = Mask::new(self.image.width(), self.image.height());
        for inst in self.instances.iter().filter(|i| i.kind == self.object) {
            m.union_with(&inst.mask);
        }
        m
    }

    /// The names of the concepts present, in [`Concept`] order.
    pub fn concept_names(&self) -> Vec<&'static str> {
        self.concepts.keys().map(|c| c.name).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness and noise
// ---------------------------------------------------------------------------------------------

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn sub_rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix(seed ^ splitmix(stream)))
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn uni(rng: &mut StdRng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

fn hash2(seed: u32, x: i32, y: i32) -> u32 {
    let mut h = seed ^ (x as u32).wrapping_mul(0x27D4_EB2D) ^ (y as u32).wrapping_mul(0x1656_67B1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^= h >> 15;
    h
}

/// A hash of a lattice point in `[0, 1)`.
fn rand01(seed: u32, x: i32, y: i32) -> f32 {
    (hash2(seed, x, y) >> 8) as f32 / (1u32 << 24) as f32
}

/// Smooth value noise in `[0, 1]`, one lattice cell per unit.
fn value_noise(seed: u32, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (ix, iy) = (x0 as i32, y0 as i32);
    let sx = fx * fx * (3.0 - 2.0 * fx);
    let sy = fy * fy * (3.0 - 2.0 * fy);
    let a = rand01(seed, ix, iy);
    let b = rand01(seed, ix + 1, iy);
    let c = rand01(seed, ix, iy + 1);
    let d = rand01(seed, ix + 1, iy + 1);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

/// Fractal value noise in `[0, 1]`.
fn fbm(seed: u32, x: f32, y: f32, octaves: u32) -> f32 {
    let (mut sum, mut norm, mut amp, mut freq) = (0.0, 0.0, 1.0, 1.0);
    for o in 0..octaves {
        sum += amp
            * value_noise(
                seed.wrapping_add(o.wrapping_mul(0x9E37_79B9)),
                x * freq,
                y * freq,
            );
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    sum / norm
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn to_u8(x: f32) -> u8 {
    x.clamp(0.0, 255.0).round() as u8
}

fn rgb(r: f32, g: f32, b: f32) -> [u8; 3] {
    [to_u8(r), to_u8(g), to_u8(b)]
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

// ---------------------------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------------------------

type V2 = (f32, f32);

/// A shape in an object's local frame (the object spans about `[-0.5, 0.5]²`).
#[derive(Debug, Clone)]
enum Shape {
    Ellipse {
        c: V2,
        rx: f32,
        ry: f32,
        cos: f32,
        sin: f32,
    },
    Poly(Vec<V2>),
    Capsule {
        a: V2,
        b: V2,
        r: f32,
    },
    /// `inner` limited to `lo <= n · p <= hi`.
    Band {
        inner: Box<Shape>,
        n: V2,
        lo: f32,
        hi: f32,
    },
}

impl Shape {
    fn ellipse(c: V2, rx: f32, ry: f32, angle: f32) -> Shape {
        Shape::Ellipse {
            c,
            rx,
            ry,
            cos: angle.cos(),
            sin: angle.sin(),
        }
    }

    fn circle(c: V2, r: f32) -> Shape {
        Shape::Ellipse {
            c,
            rx: r,
            ry: r,
            cos: 1.0,
            sin: 0.0,
        }
    }

    fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Shape {
        Shape::Poly(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    }

    fn contains(&self, p: V2) -> bool {
        match self {
            Shape::Ellipse {
                c,
                rx,
                ry,
                cos,
                sin,
            } => {
                let (dx, dy) = (p.0 - c.0, p.1 - c.1);
                let x = (dx * cos + dy * sin) / rx;
                let y = (-dx * sin + dy * cos) / ry;
                x * x + y * y <= 1.0
            }
            Shape::Poly(pts) => {
                let mut inside = false;
                let mut j = pts.len() - 1;
                for i in 0..pts.len() {
                    let (a, b) = (pts[i], pts[j]);
                    if (a.1 > p.1) != (b.1 > p.1)
                        && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0
                    {
                        inside = !inside;
                    }
                    j = i;
                }
                inside
            }
            Shape::Capsule { a, b, r } => {
                let (vx, vy) = (b.0 - a.0, b.1 - a.1);
                let (wx, wy) = (p.0 - a.0, p.1 - a.1);
                let len2 = vx * vx + vy * vy;
                let t = if len2 > 0.0 {
                    ((wx * vx + wy * vy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (dx, dy) = (wx - t * vx, wy - t * vy);
                dx * dx + dy * dy <= r * r
            }
            Shape::Band { inner, n, lo, hi } => {
                let d = n.0 * p.0 + n.1 * p.1;
                *lo <= d && d <= *hi && inner.contains(p)
            }
        }
    }

    /// A local bounding box `(min, max)`.
    fn bounds(&self) -> (V2, V2) {
        match self {
            Shape::Ellipse { c, rx, ry, .. } => {
                let r = rx.max(*ry);
                ((c.0 - r, c.1 - r), (c.0 + r, c.1 + r))
            }
            Shape::Poly(pts) => pts.iter().fold(
                (
                    (f32::INFINITY, f32::INFINITY),
                    (f32::NEG_INFINITY, f32::NEG_INFINITY),
                ),
                |(lo, hi), p| {
                    (
                        (lo.0.min(p.0), lo.1.min(p.1)),
                        (hi.0.max(p.0), hi.1.max(p.1)),
                    )
                },
            ),
            Shape::Capsule { a, b, r } => (
                (a.0.min(b.0) - r, a.1.min(b.1) - r),
                (a.0.max(b.0) + r, a.1.max(b.1) + r),
            ),
            Shape::Band { inner, .. } => inner.bounds(),
        }
    }
}

/// Local → world: `c + s · R(angle) · (flip · x, y)`, in normalised world units.
#[derive(Debug, Clone, Copy)]
struct Xf {
    c: V2,
    s: f32,
    cos: f32,
    sin: f32,
    flip: f32,
}

impl Xf {
    fn new(c: V2, s: f32, angle: f32, flip: bool) -> Xf {
        Xf {
            c,
            s,
            cos: angle.cos(),
            sin: angle.sin(),
            flip: if flip { -1.0 } else { 1.0 },
        }
    }

    fn to_local(self, p: V2) -> V2 {
        let (dx, dy) = (p.0 - self.c.0, p.1 - self.c.1);
        let x = (dx * self.cos + dy * self.sin) / self.s;
        let y = (-dx * self.sin + dy * self.cos) / self.s;
        (x * self.flip, y)
    }

    fn to_world(self, l: V2) -> V2 {
        let (x, y) = (l.0 * self.flip * self.s, l.1 * self.s);
        (
            self.c.0 + x * self.cos - y * self.sin,
            self.c.1 + x * self.sin + y * self.cos,
        )
    }

    /// The world bounding box of a local box.
    fn world_box(&self, (lo, hi): (V2, V2)) -> (V2, V2) {
        let corners =
            [(lo.0, lo.1), (hi.0, lo.1), (hi.0, hi.1), (lo.0, hi.1)].map(|p| self.to_world(p));
        corners.iter().fold(
            (
                (f32::INFINITY, f32::INFINITY),
                (f32::NEG_INFINITY, f32::NEG_INFINITY),
            ),
            |(lo, hi), p| {
                (
                    (lo.0.min(p.0), lo.1.min(p.1)),
                    (hi.0.max(p.0), hi.1.max(p.1)),
                )
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Canvas
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Paint {
    rgb: [u8; 3],
    bits: u64,
}

type Col = ([u8; 3], Cid);

const RED: Col = ([205, 35, 30], Cid::Red);
const ORANGE: Col = ([240, 130, 25], Cid::Orange);
const GOLD: Col = ([250, 170, 35], Cid::Orange);
const YELLOW: Col = ([245, 210, 35], Cid::Yellow);
const GREEN: Col = ([60, 160, 55], Cid::Green);
const LEAF_LIGHT: Col = ([135, 200, 60], Cid::Green);
const LEAF_DARK: Col = ([30, 95, 40], Cid::Green);
const BLUE: Col = ([40, 80, 205], Cid::Blue);
const LIGHT_BLUE: Col = ([155, 210, 240], Cid::LightBlue);
const PINK: Col = ([240, 130, 185], Cid::Pink);
const PURPLE: Col = ([125, 50, 155], Cid::Purple);
const BROWN: Col = ([125, 78, 38], Cid::Brown);
const BEIGE: Col = ([228, 208, 165], Cid::Beige);
const WHITE: Col = ([245, 245, 245], Cid::White);
const BLACK: Col = ([25, 25, 28], Cid::Black);
const GREY: Col = ([130, 130, 135], Cid::Grey);

/// The colour with a small random shift per channel (same concept).
fn jit(rng: &mut StdRng, (c, id): Col) -> Col {
    let mut out = [0u8; 3];
    for (o, v) in out.iter_mut().zip(c) {
        *o = to_u8(v as f32 + uni(rng, -12.0, 12.0));
    }
    (out, id)
}

/// The colour scaled by `k` (same concept).
fn shade((c, id): Col, k: f32) -> Col {
    (rgb(c[0] as f32 * k, c[1] as f32 * k, c[2] as f32 * k), id)
}

fn paint(col: Col, part: Cid, texture: Option<Cid>) -> Paint {
    Paint {
        rgb: col.0,
        bits: bit(col.1) | bit(part) | texture.map_or(0, bit),
    }
}

const OWNER_BACKGROUND: u8 = 0;
const OWNER_DISTRACTOR: u8 = 1;
const OWNER_FIRST_INSTANCE: u8 = 2;

struct Canvas {
    w: u32,
    h: u32,
    /// Pixels per normalised unit (the shorter side).
    s: f32,
    rgb: Vec<[u8; 3]>,
    bits: Vec<u64>,
    owner: Vec<u8>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Canvas {
        let n = w as usize * h as usize;
        Canvas {
            w,
            h,
            s: w.min(h) as f32,
            rgb: vec![[0; 3]; n],
            bits: vec![0; n],
            owner: vec![OWNER_BACKGROUND; n],
        }
    }

    fn fill_background(&mut self, bg: &Background) {
        for y in 0..self.h {
            let v = (y as f32 + 0.5) / self.s;
            for x in 0..self.w {
                let u = (x as f32 + 0.5) / self.s;
                let p = bg.sample(u, v);
                let i = y as usize * self.w as usize + x as usize;
                self.rgb[i] = p.rgb;
                self.bits[i] = p.bits;
            }
        }
    }

    fn paint(&mut self, shape: &Shape, xf: &Xf, paint: Paint, owner: u8) {
        let (lo, hi) = xf.world_box(shape.bounds());
        // pixel centre (i + 0.5) / s in [lo, hi]
        let x0 = (lo.0 * self.s - 0.5).floor().max(0.0) as u32;
        let y0 = (lo.1 * self.s - 0.5).floor().max(0.0) as u32;
        let x1 = ((hi.0 * self.s - 0.5).ceil() + 1.0)
            .max(0.0)
            .min(self.w as f32) as u32;
        let y1 = ((hi.1 * self.s - 0.5).ceil() + 1.0)
            .max(0.0)
            .min(self.h as f32) as u32;
        for y in y0..y1 {
            let py = (y as f32 + 0.5) / self.s;
            for x in x0..x1 {
                let px = (x as f32 + 0.5) / self.s;
                if shape.contains(xf.to_local((px, py))) {
                    let i = y as usize * self.w as usize + x as usize;
                    self.rgb[i] = paint.rgb;
                    self.bits[i] = paint.bits;
                    self.owner[i] = owner;
                }
            }
        }
    }

    fn owner_mask(&self, owner: u8) -> Mask {
        Mask {
            width: self.w,
            height: self.h,
            bits: self.owner.iter().map(|&o| o == owner).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backgrounds
// ---------------------------------------------------------------------------------------------

struct Background {
    kind: SceneKind,
    seed: u32,
    a: [f32; 4],
    brightness: f32,
    /// World height in normalised units.
    world_h: f32,
}

impl Background {
    fn new(kind: SceneKind, rng: &mut StdRng, world_h: f32) -> Background {
        let seed = rng.random::<u32>();
        let a = [
            rng.random::<f32>(),
            rng.random::<f32>(),
            rng.random::<f32>(),
            rng.random::<f32>(),
        ];
        let brightness = uni(rng, 0.9, 1.08);
        Background {
            kind,
            seed,
            a,
            brightness,
            world_h,
        }
    }

    fn sample(&self, u: f32, v: f32) -> Paint {
        let (col, colour, texture) = self.texel(u, v);
        let k = self.brightness;
        Paint {
            rgb: rgb(col[0] * k, col[1] * k, col[2] * k),
            bits: bit(colour) | bit(texture) | bit(scene_cid(self.kind)),
        }
    }

    fn texel(&self, u: f32, v: f32) -> ([f32; 3], Cid, Cid) {
        let (s, a) = (self.seed, self.a);
        match self.kind {
            SceneKind::Water => {
                let f = 7.0 + 4.0 * a[0];
                let g = 1.5 + 2.0 * a[1];
                let amp = 0.25 + 0.35 * a[2];
                let w = v * f
                    + amp * (2.0 * PI * u * g + 2.0 * PI * a[3]).sin()
                    + 0.8 * value_noise(s, u * 4.0, v * 4.0);
                let t = (2.0 * PI * w).sin();
                let fine = value_noise(s ^ 1, u * 30.0, v * 12.0) - 0.5;
                if t > 0.8 {
                    (
                        [165.0 + 40.0 * fine, 208.0 + 30.0 * fine, 242.0],
                        Cid::LightBlue,
                        Cid::Waves,
                    )
                } else {
                    (
                        [
                            25.0 + 15.0 * t + 20.0 * fine,
                            85.0 + 22.0 * t + 30.0 * fine,
                            165.0 + 25.0 * t + 30.0 * fine,
                        ],
                        Cid::Blue,
                        Cid::Waves,
                    )
                }
            }
            SceneKind::Grass => {
                let warp = 3.0 * value_noise(s ^ 2, u * 5.0, v * 5.0);
                let streak = value_noise(s, u * 90.0 + warp, v * 7.0);
                let patch = value_noise(s ^ 3, u * 5.0, v * 5.0);
                let k = 0.5 + 0.65 * streak + 0.3 * (patch - 0.5);
                (
                    [
                        (45.0 + 20.0 * a[0]) * k,
                        (130.0 + 25.0 * a[1]) * k,
                        38.0 * k,
                    ],
                    Cid::Green,
                    Cid::Blades,
                )
            }
            SceneKind::Sand => {
                let rip = (2.0
                    * PI
                    * (v * (12.0 + 6.0 * a[0])
                        + u * (2.0 * a[1] - 1.0) * 3.0
                        + 1.2 * value_noise(s, u * 2.5, v * 2.5)))
                .sin();
                let fine = value_noise(s ^ 4, u * 45.0, v * 45.0) - 0.5;
                let cell = 0.018;
                let (ci, cj) = ((u / cell).floor() as i32, (v / cell).floor() as i32);
                if rand01(s ^ 5, ci, cj) < 0.12 {
                    let cx = (ci as f32 + 0.25 + 0.5 * rand01(s ^ 6, ci, cj)) * cell;
                    let cy = (cj as f32 + 0.25 + 0.5 * rand01(s ^ 7, ci, cj)) * cell;
                    let r = 0.28 * cell;
                    if (u - cx) * (u - cx) + (v - cy) * (v - cy) <= r * r {
                        return ([115.0, 88.0, 55.0], Cid::Brown, Cid::Ripples);
                    }
                }
                let k = 1.0 + 0.07 * rip + 0.1 * fine;
                ([222.0 * k, 200.0 * k, 150.0 * k], Cid::Beige, Cid::Ripples)
            }
            SceneKind::Sky => {
                let t = (v / self.world_h).clamp(0.0, 1.0);
                let sky = mix([55.0, 115.0, 210.0], [160.0, 200.0, 245.0], t);
                let c = fbm(s, u * 2.5 + a[0] * 10.0, v * 4.0 + a[1] * 10.0, 4);
                let lo = 0.5 + 0.1 * a[2];
                let cloud = smoothstep(lo, lo + 0.14, c);
                let col = mix(sky, [250.0, 250.0, 253.0], cloud);
                (
                    col,
                    if cloud > 0.5 { Cid::White } else { Cid::Blue },
                    Cid::Clouds,
                )
            }
            SceneKind::Brick => {
                let bh = 0.06 + 0.025 * a[0];
                let bw = bh * (2.0 + 0.6 * a[1]);
                let m = bh * 0.14;
                let row = (v / bh).floor();
                let off = if (row as i32).rem_euclid(2) == 1 {
                    0.5 * bw
                } else {
                    0.0
                };
                let uu = u + off + a[2] * bw;
                let col = (uu / bw).floor();
                let (fu, fv) = (uu - col * bw, v - row * bh);
                let fine = value_noise(s, u * 50.0, v * 50.0) - 0.5;
                if fu < m || fv < m {
                    let g = 188.0 + 25.0 * fine;
                    ([g, g - 4.0, g - 12.0], Cid::Grey, Cid::Bricks)
                } else {
                    let k = 0.8 + 0.35 * rand01(s ^ 8, col as i32, row as i32);
                    (
                        [
                            155.0 * k + 30.0 * fine,
                            58.0 * k + 15.0 * fine,
                            42.0 * k + 10.0 * fine,
                        ],
                        Cid::Red,
                        Cid::Bricks,
                    )
                }
            }
            SceneKind::Snow => {
                let n = fbm(s, u * 3.0, v * 3.0, 3);
                let val = 195.0 + 60.0 * n + 12.0 * (value_noise(s ^ 9, u * 40.0, v * 40.0) - 0.5);
                let cell = 0.035;
                let (ci, cj) = ((u / cell).floor() as i32, (v / cell).floor() as i32);
                if rand01(s ^ 10, ci, cj) < 0.3 {
                    let cx = (ci as f32 + 0.3 + 0.4 * rand01(s ^ 11, ci, cj)) * cell;
                    let cy = (cj as f32 + 0.3 + 0.4 * rand01(s ^ 12, ci, cj)) * cell;
                    let r = 0.17 * cell;
                    if (u - cx) * (u - cx) + (v - cy) * (v - cy) <= r * r {
                        return ([255.0, 255.0, 255.0], Cid::White, Cid::Flakes);
                    }
                }
                (
                    [val - 8.0, val - 3.0, val + 4.0],
                    if val < 222.0 { Cid::Grey } else { Cid::White },
                    Cid::Flakes,
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

struct Object {
    kind: ObjectKind,
    parts: Vec<(Shape, Paint)>,
    /// Largest rotation either way, radians.
    max_rotation: f32,
    flippable: bool,
}

impl Object {
    fn bounds(&self) -> (V2, V2) {
        self.parts.iter().map(|(s, _)| s.bounds()).fold(
            (
                (f32::INFINITY, f32::INFINITY),
                (f32::NEG_INFINITY, f32::NEG_INFINITY),
            ),
            |(lo, hi), (a, b)| {
                (
                    (lo.0.min(a.0), lo.1.min(a.1)),
                    (hi.0.max(b.0), hi.1.max(b.1)),
                )
            },
        )
    }

    /// The covered area in local units², sampled on a grid.
    fn area(&self) -> f32 {
        const N: i32 = 40;
        let mut hits = 0;
        for j in 0..N {
            for i in 0..N {
                let p = (
                    (i as f32 + 0.5) / N as f32 - 0.5,
                    (j as f32 + 0.5) / N as f32 - 0.5,
                );
                if self.parts.iter().any(|(s, _)| s.contains(p)) {
                    hits += 1;
                }
            }
        }
        hits as f32 / (N * N) as f32
    }
}

fn build_object(kind: ObjectKind, rng: &mut StdRng) -> Object {
    let mut parts = Vec::new();
    let (max_rotation, flippable) = match kind {
        ObjectKind::Goldfish => {
            let body = {
                let picked = pick(rng, &[ORANGE, ORANGE, GOLD, RED]);
                jit(rng, picked)
            };
            let fin = shade(body, 0.82);
            parts.push((
                Shape::Poly(vec![
                    (-0.26, 0.0),
                    (-0.5, -0.24),
                    (-0.42, 0.0),
                    (-0.5, 0.24),
                ]),
                paint(fin, Cid::Tail, None),
            ));
            parts.push((
                Shape::Poly(vec![(-0.14, -0.12), (0.12, -0.15), (-0.17, -0.31)]),
                paint(fin, Cid::Fin, None),
            ));
            parts.push((
                Shape::Poly(vec![(-0.08, 0.13), (0.1, 0.15), (-0.12, 0.28)]),
                paint(fin, Cid::Fin, None),
            ));
            parts.push((
                Shape::ellipse((0.04, 0.0), 0.32, 0.19, 0.0),
                paint(body, Cid::Body, None),
            ));
            parts.push((
                Shape::Poly(vec![(-0.02, 0.03), (0.12, 0.07), (0.0, 0.12)]),
                paint(fin, Cid::Fin, None),
            ));
            parts.push((
                Shape::circle((0.22, -0.05), 0.05),
                paint(WHITE, Cid::Eye, None),
            ));
            parts.push((
                Shape::circle((0.235, -0.05), 0.026),
                paint(BLACK, Cid::Eye, None),
            ));
            (0.45, true)
        }
        ObjectKind::Ball => {
            let base = {
                let picked = pick(rng, &[RED, BLUE, YELLOW, ORANGE, GREEN]);
                jit(rng, picked)
            };
            let accent = loop {
                let c = pick(rng, &[WHITE, WHITE, YELLOW, BLUE, RED]);
                if c.1 != base.1 {
                    break jit(rng, c);
                }
            };
            let disc = Shape::circle((0.0, 0.0), 0.5);
            if rng.random_bool(0.5) {
                let a = uni(rng, 0.0, PI);
                let n = (a.cos(), a.sin());
                parts.push((disc.clone(), paint(base, Cid::Body, Some(Cid::Stripes))));
                let bands: &[(f32, f32)] = if rng.random_bool(0.5) {
                    &[(-0.1, 0.1)]
                } else {
                    &[(-0.33, -0.17), (0.17, 0.33)]
                };
                for &(lo, hi) in bands {
                    let band = Shape::Band {
                        inner: Box::new(disc.clone()),
                        n,
                        lo,
                        hi,
                    };
                    parts.push((band, paint(accent, Cid::Body, Some(Cid::Stripes))));
                }
            } else {
                parts.push((disc, paint(base, Cid::Body, Some(Cid::Dots))));
                let (r, sp) = (0.07, 0.24);
                let (ox, oy) = (uni(rng, 0.0, sp), uni(rng, 0.0, sp));
                for j in -3..=3 {
                    for i in -3..=3 {
                        let shift = if j % 2 == 0 { 0.0 } else { sp * 0.5 };
                        let c = (
                            i as f32 * sp + ox + shift - sp,
                            j as f32 * sp * 0.87 + oy - sp,
                        );
                        if (c.0 * c.0 + c.1 * c.1).sqrt() + r < 0.46 {
                            parts.push((
                                Shape::circle(c, r),
                                paint(accent, Cid::Body, Some(Cid::Dots)),
                            ));
                        }
                    }
                }
            }
            (PI, false)
        }
        ObjectKind::Star => {
            let col = {
                let picked = pick(rng, &[YELLOW, YELLOW, ORANGE, GOLD]);
                jit(rng, picked)
            };
            let ratio = uni(rng, 0.38, 0.48);
            let pts = (0..10)
                .map(|k| {
                    let ang = k as f32 * PI / 5.0 - PI / 2.0;
                    let r = if k % 2 == 0 { 0.5 } else { 0.5 * ratio };
                    (r * ang.cos(), r * ang.sin() + 0.05)
                })
                .collect();
            parts.push((Shape::Poly(pts), paint(col, Cid::Body, None)));
            (PI, false)
        }
        ObjectKind::Flower => {
            let stem = jit(rng, GREEN);
            parts.push((
                Shape::Capsule {
                    a: (0.0, -0.1),
                    b: (0.0, 0.47),
                    r: 0.028,
                },
                paint(stem, Cid::Stem, None),
            ));
            let petal = {
                let picked = pick(rng, &[PINK, RED, WHITE, YELLOW, BLUE]);
                jit(rng, picked)
            };
            let centre = loop {
                let c = pick(rng, &[YELLOW, ORANGE, BROWN]);
                if c.1 != petal.1 {
                    break jit(rng, c);
                }
            };
            let hc = (0.0, -0.2);
            let n = rng.random_range(5..=8);
            let a0 = uni(rng, 0.0, 2.0 * PI);
            for k in 0..n {
                let a = a0 + 2.0 * PI * k as f32 / n as f32;
                let c = (hc.0 + 0.16 * a.cos(), hc.1 + 0.16 * a.sin());
                parts.push((
                    Shape::ellipse(c, 0.13, 0.07, a),
                    paint(petal, Cid::Petal, None),
                ));
            }
            parts.push((Shape::circle(hc, 0.085), paint(centre, Cid::Centre, None)));
            (0.35, false)
        }
        ObjectKind::House => {
            let wall = {
                let picked = pick(rng, &[BEIGE, WHITE, YELLOW, PINK]);
                jit(rng, picked)
            };
            let roof = {
                let picked = pick(rng, &[RED, BROWN, GREY, BLUE]);
                jit(rng, picked)
            };
            let chimney = {
                let picked = pick(rng, &[BROWN, GREY, RED]);
                jit(rng, picked)
            };
            let door = loop {
                let c = pick(rng, &[BROWN, RED, BLUE, GREEN]);
                if c.1 != wall.1 {
                    break jit(rng, c);
                }
            };
            parts.push((
                Shape::rect(0.16, -0.42, 0.27, -0.15),
                paint(chimney, Cid::Chimney, None),
            ));
            parts.push((
                Shape::rect(-0.36, -0.06, 0.36, 0.45),
                paint(wall, Cid::Wall, None),
            ));
            parts.push((
                Shape::Poly(vec![(-0.46, -0.04), (0.46, -0.04), (0.0, -0.46)]),
                paint(roof, Cid::Roof, None),
            ));
            let dx = uni(rng, -0.11, 0.11);
            parts.push((
                Shape::rect(dx - 0.075, 0.2, dx + 0.075, 0.45),
                paint(door, Cid::Door, None),
            ));
            let window = jit(rng, LIGHT_BLUE);
            for x in [-0.3, 0.16] {
                parts.push((
                    Shape::rect(x, 0.03, x + 0.14, 0.17),
                    paint(window, Cid::Window, None),
                ));
            }
            (0.08, true)
        }
        ObjectKind::Car => {
            let body = {
                let picked = pick(rng, &[RED, BLUE, YELLOW, GREEN, ORANGE, WHITE]);
                jit(rng, picked)
            };
            let window = jit(rng, LIGHT_BLUE);
            parts.push((
                Shape::Poly(vec![(-0.3, 0.0), (0.24, 0.0), (0.12, -0.21), (-0.2, -0.21)]),
                paint(body, Cid::Body, None),
            ));
            parts.push((
                Shape::Poly(vec![
                    (-0.5, 0.02),
                    (-0.36, -0.03),
                    (0.33, -0.03),
                    (0.49, 0.04),
                    (0.5, 0.2),
                    (-0.5, 0.2),
                ]),
                paint(body, Cid::Body, None),
            ));
            parts.push((
                Shape::Poly(vec![
                    (-0.25, -0.03),
                    (-0.04, -0.03),
                    (-0.04, -0.17),
                    (-0.17, -0.17),
                ]),
                paint(window, Cid::Window, None),
            ));
            parts.push((
                Shape::Poly(vec![(0.0, -0.03), (0.2, -0.03), (0.1, -0.17), (0.0, -0.17)]),
                paint(window, Cid::Window, None),
            ));
            for x in [-0.29, 0.29] {
                parts.push((
                    Shape::circle((x, 0.2), 0.115),
                    paint(BLACK, Cid::Wheel, None),
                ));
                parts.push((
                    Shape::circle((x, 0.2), 0.045),
                    paint(GREY, Cid::Wheel, None),
                ));
            }
            (0.12, true)
        }
        ObjectKind::Leaf => {
            let blade = {
                let picked = pick(rng, &[LEAF_LIGHT, LEAF_DARK, BROWN, ORANGE, YELLOW]);
                jit(rng, picked)
            };
            let light = blade.0.map(|c| c as f32 + (255.0 - c as f32) * 0.45);
            let vein = (rgb(light[0], light[1], light[2]), blade.1);
            let stalk = shade(blade, 0.7);
            // half-width of the blade at height y (tip at -0.5, base at 0.28)
            let half = |y: f32| {
                let t = ((y + 0.5) / 0.78).clamp(0.0, 1.0);
                0.27 * (PI * t).sin() * (0.55 + 0.45 * t)
            };
            const N: usize = 20;
            let ys: Vec<f32> = (0..=N).map(|k| -0.5 + 0.78 * k as f32 / N as f32).collect();
            let mut pts: Vec<V2> = ys.iter().map(|&y| (-half(y), y)).collect();
            pts.extend(ys.iter().rev().map(|&y| (half(y), y)));
            parts.push((Shape::Poly(pts), paint(blade, Cid::Body, None)));
            parts.push((
                Shape::Capsule {
                    a: (0.0, 0.24),
                    b: (0.0, 0.5),
                    r: 0.02,
                },
                paint(stalk, Cid::Stem, None),
            ));
            parts.push((
                Shape::Capsule {
                    a: (0.0, 0.26),
                    b: (0.0, -0.42),
                    r: 0.013,
                },
                paint(vein, Cid::Vein, None),
            ));
            for k in 0..3 {
                let y0 = 0.12 - 0.16 * k as f32;
                let y1 = y0 - 0.13;
                let x1 = 0.7 * half(y1);
                for sx in [-1.0, 1.0] {
                    parts.push((
                        Shape::Capsule {
                            a: (0.0, y0),
                            b: (sx * x1, y1),
                            r: 0.008,
                        },
                        paint(vein, Cid::Vein, None),
                    ));
                }
            }
            (PI, false)
        }
        ObjectKind::Mushroom => {
            let cap = {
                let picked = pick(rng, &[RED, RED, RED, BROWN, ORANGE]);
                jit(rng, picked)
            };
            let stem = jit(rng, BEIGE);
            let dots = cap.1 == Cid::Red || rng.random_bool(0.5);
            let tex = dots.then_some(Cid::Dots);
            parts.push((
                Shape::Poly(vec![
                    (-0.09, -0.02),
                    (0.09, -0.02),
                    (0.12, 0.45),
                    (-0.12, 0.45),
                ]),
                paint(stem, Cid::Stem, None),
            ));
            let (rx, ry, base) = (0.46, 0.42, 0.02);
            let dome = Shape::ellipse((0.0, base), rx, ry, 0.0);
            parts.push((
                Shape::Band {
                    inner: Box::new(dome),
                    n: (0.0, 1.0),
                    lo: -1.0,
                    hi: base,
                },
                paint(cap, Cid::Cap, tex),
            ));
            if dots {
                let white = jit(rng, WHITE);
                let mut placed: Vec<(V2, f32)> = Vec::new();
                for _ in 0..40 {
                    if placed.len() >= 6 {
                        break;
                    }
                    let r = uni(rng, 0.04, 0.065);
                    let c = (uni(rng, -0.4, 0.4), uni(rng, -0.38, base - r - 0.02));
                    let (ex, ey) = (c.0 / (rx - r - 0.02), (c.1 - base) / (ry - r - 0.02));
                    let inside = ex * ex + ey * ey <= 1.0;
                    let apart = placed.iter().all(|&(q, rq)| {
                        let (dx, dy) = (q.0 - c.0, q.1 - c.1);
                        (dx * dx + dy * dy).sqrt() > r + rq + 0.03
                    });
                    if inside && apart {
                        placed.push((c, r));
                        parts.push((Shape::circle(c, r), paint(white, Cid::Cap, tex)));
                    }
                }
            }
            (0.25, false)
        }
    };
    Object {
        kind,
        parts,
        max_rotation,
        flippable,
    }
}

/// Random pose of `obj` at size `scale`, fully inside the `ww × wh` world, overlapping the
/// already placed world boxes as little as a few tries find.
fn place(
    rng: &mut StdRng,
    obj: &Object,
    scale: f32,
    ww: f32,
    wh: f32,
    others: &[(V2, V2)],
) -> (Xf, (V2, V2)) {
    let angle = uni(rng, -obj.max_rotation, obj.max_rotation);
    let flip = obj.flippable && rng.random_bool(0.5);
    let unit = Xf::new((0.0, 0.0), 1.0, angle, flip).world_box(obj.bounds());
    let (ew, eh) = (unit.1 .0 - unit.0 .0, unit.1 .1 - unit.0 .1);
    // shrink to fit when the rotated object would not
    let s = scale.min(0.98 * ww / ew).min(0.98 * wh / eh);
    let tries = if others.is_empty() { 1 } else { 12 };
    let mut best: Option<(f32, Xf, (V2, V2))> = None;
    for _ in 0..tries {
        let cx = uni(rng, -unit.0 .0 * s, ww - unit.1 .0 * s);
        let cy = uni(rng, -unit.0 .1 * s, wh - unit.1 .1 * s);
        let xf = Xf::new((cx, cy), s, angle, flip);
        let wb = xf.world_box(obj.bounds());
        let overlap: f32 = others
            .iter()
            .map(|o| {
                let ox = (wb.1 .0.min(o.1 .0) - wb.0 .0.max(o.0 .0)).max(0.0);
                let oy = (wb.1 .1.min(o.1 .1) - wb.0 .1.max(o.0 .1)).max(0.0);
                ox * oy
            })
            .sum();
        if best.as_ref().is_none_or(|b| overlap < b.0) {
            best = Some((overlap, xf, wb));
        }
    }
    match best {
        Some((_, xf, wb)) => (xf, wb),
        None => {
            let xf = Xf::new((ww / 2.0, wh / 2.0), s, angle, flip);
            (xf, xf.world_box(obj.bounds()))
        }
    }
}

/// A small clutter shape: a square, a triangle or a thin line in grey, black or purple.
fn distractor(rng: &mut StdRng, ww: f32, wh: f32) -> (Shape, Xf, Paint) {
    let col = {
        let picked = pick(rng, &[GREY, BLACK, PURPLE]);
        jit(rng, picked)
    };
    let (shape, size) = match rng.random_range(0..3) {
        0 => (Shape::rect(-0.5, -0.5, 0.5, 0.5), uni(rng, 0.03, 0.07)),
        1 => (
            Shape::Poly(vec![(0.0, -0.5), (0.5, 0.4), (-0.5, 0.4)]),
            uni(rng, 0.035, 0.08),
        ),
        _ => (
            Shape::Capsule {
                a: (-0.5, 0.0),
                b: (0.5, 0.0),
                r: uni(rng, 0.025, 0.045),
            },
            uni(rng, 0.08, 0.22),
        ),
    };
    let c = (uni(rng, 0.0, ww), uni(rng, 0.0, wh));
    let xf = Xf::new(c, size, uni(rng, 0.0, 2.0 * PI), false);
    (
        shape,
        xf,
        Paint {
            rgb: col.0,
            bits: bit(col.1),
        },
    )
}

fn build(
    seed: u64,
    config: &SceneConfig,
    object: Option<ObjectKind>,
    scene: Option<SceneKind>,
    layers: Layers,
) -> Result<Scene, SceneError> {
    config.validate()?;
    let mut krng = sub_rng(seed, 1);
    let random_object = pick(&mut krng, &ObjectKind::ALL);
    let random_scene = pick(&mut krng, &SceneKind::ALL);
    let object = object.unwrap_or(random_object);
    let scene_kind = scene.unwrap_or(random_scene);

    let (w, h) = (config.width, config.height);
    let short = w.min(h) as f32;
    let (ww, wh) = (w as f32 / short, h as f32 / short);
    let mut canvas = Canvas::new(w, h);
    canvas.fill_background(&Background::new(scene_kind, &mut sub_rng(seed, 2), wh));

    if layers.distractors {
        let mut drng = sub_rng(seed, 3);
        for _ in 0..config.distractors {
            let (shape, xf, p) = distractor(&mut drng, ww, wh);
            canvas.paint(&shape, &xf, p, OWNER_DISTRACTOR);
        }
    }

    let mut instances = Vec::new();
    if layers.objects {
        let mut orng = sub_rng(seed, 4);
        let n = orng.random_range(config.min_objects..=config.max_objects);
        let (lo, hi) = config.object_scale;
        let main_scale = uni(&mut orng, lo, hi);
        let main = build_object(object, &mut orng);
        let main_area = main.area() * main_scale * main_scale;
        let (main_xf, main_box) = place(&mut orng, &main, main_scale, ww, wh, &[]);
        let mut boxes = vec![main_box];
        let mut placed = vec![(main, main_xf)];
        let others: Vec<ObjectKind> = ObjectKind::ALL
            .into_iter()
            .filter(|&k| k != object)
            .collect();
        for _ in 1..n {
            let obj = build_object(pick(&mut orng, &others), &mut orng);
            // smaller than the main object, in scale and in area
            let by_area = (main_area / (obj.area() * main_scale * main_scale).max(1e-6))
                .sqrt()
                .min(1.0);
            let scale = main_scale * uni(&mut orng, 0.45, 0.7) * by_area;
            let (xf, wb) = place(&mut orng, &obj, scale, ww, wh, &boxes);
            boxes.push(wb);
            placed.push((obj, xf));
        }
        // extras first, the main object last (fully visible)
        for (i, (obj, xf)) in placed
            .iter()
            .enumerate()
            .skip(1)
            .chain(placed.iter().enumerate().take(1))
        {
            let owner = OWNER_FIRST_INSTANCE + i as u8;
            for (shape, p) in &obj.parts {
                canvas.paint(shape, xf, *p, owner);
            }
        }
        for (i, (obj, _)) in placed.iter().enumerate() {
            let mask = canvas.owner_mask(OWNER_FIRST_INSTANCE + i as u8);
            match mask.bbox() {
                Some(bbox) => instances.push(Instance {
                    kind: obj.kind,
                    mask,
                    bbox,
                }),
                None if i == 0 => {
                    return Err(SceneError::EmptyObject {
                        seed,
                        width: w,
                        height: h,
                    })
                }
                None => {}
            }
        }
    }

    let present = canvas.bits.iter().fold(0u64, |acc, &b| acc | b);
    let mut concepts = BTreeMap::new();
    for (k, concept) in VOCAB.iter().enumerate() {
        if present & (1u64 << k) != 0 {
            let bits = canvas.bits.iter().map(|&b| b & (1u64 << k) != 0).collect();
            concepts.insert(
                *concept,
                Mask {
                    width: w,
                    height: h,
                    bits,
                },
            );
        }
    }
    let mut image = RgbImage::new(w, h);
    for (px, c) in image.pixels_mut().zip(&canvas.rgb) {
        *px = Rgb(*c);
    }
    Ok(Scene {
        seed,
        image,
        scene: scene_kind,
        object,
        instances,
        concepts,
    })
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(width: u32, height: u32) -> SceneConfig {
        SceneConfig {
            width,
            height,
            ..SceneConfig::default()
        }
    }

    fn small() -> SceneConfig {
        cfg(96, 96)
    }

    #[test]
    fn vocabulary_is_sorted_unique_and_large_enough() {
        let all = all_concepts();
        assert!(
            all.windows(2).all(|w| w[0] < w[1]),
            "all_concepts must be strictly sorted"
        );
        let mut names: Vec<_> = all.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "concept names must be unique");
        let count = |k| all.iter().filter(|c| c.kind == k).count();
        assert!(count(ConceptKind::Colour) >= 8);
        assert!(count(ConceptKind::Part) >= 10);
        assert!(count(ConceptKind::Texture) >= 3);
        assert_eq!(count(ConceptKind::Scene), 6);
        for kind in SceneKind::ALL {
            let c = VOCAB[scene_cid(kind) as usize];
            assert_eq!((c.name, c.kind), (kind.name(), ConceptKind::Scene));
        }
        for (cid, name) in [
            (Cid::LightBlue, "light-blue"),
            (Cid::Window, "window"),
            (Cid::Waves, "waves"),
        ] {
            assert_eq!(VOCAB[cid as usize].name, name);
        }
        assert_eq!(Cid::SWater as usize + 1, VOCAB.len());
        assert_eq!(
            Concept::from_name("FIN").ok().map(|c| c.kind),
            Some(ConceptKind::Part)
        );
        assert!(Concept::from_name("fsh").is_err());
    }

    #[test]
    fn same_seed_same_scene_different_seed_different_scene() {
        let config = SceneConfig {
            max_objects: 3,
            ..small()
        };
        for seed in [0, 1, 77, u64::MAX] {
            let a = Scene::generate(seed, &config).unwrap();
            let b = Scene::generate(seed, &config).unwrap();
            assert_eq!(a.image, b.image);
            assert_eq!(a.instances, b.instances);
            assert_eq!(a.concepts, b.concepts);
            assert_eq!((a.object, a.scene, a.seed), (b.object, b.scene, seed));
            let c = Scene::generate(seed.wrapping_add(1), &config).unwrap();
            assert_ne!(a.image, c.image);
            let d = Scene::generate_with(seed, &config, None, None).unwrap();
            assert_eq!(a.image, d.image);
        }
    }

    #[test]
    fn instance_masks_are_exactly_the_painted_pixels() {
        for seed in 0..24u64 {
            let config = SceneConfig {
                max_objects: 3,
                min_objects: 2,
                distractors: 0,
                ..small()
            };
            let scene = Scene::generate(seed, &config).unwrap();
            let plain = build(
                seed,
                &config,
                Some(scene.object),
                Some(scene.scene),
                Layers {
                    distractors: false,
                    objects: false,
                },
            )
            .unwrap();
            assert!(plain.instances.is_empty());
            let (w, h) = scene.image.dimensions();
            let mut covered = Mask::new(w, h);
            for (i, inst) in scene.instances.iter().enumerate() {
                assert_eq!((inst.mask.width(), inst.mask.height()), (w, h));
                assert!(inst.mask.count() > 0);
                assert_eq!(inst.mask.bbox(), Some(inst.bbox));
                let (x0, y0, x1, y1) = inst.bbox;
                assert!(x0 < x1 && x1 <= w && y0 < y1 && y1 <= h);
                for other in &scene.instances[i + 1..] {
                    assert_eq!(
                        inst.mask.iou(&other.mask),
                        0.0,
                        "instances overlap (seed {seed})"
                    );
                }
                let differing = inst
                    .mask
                    .as_slice()
                    .iter()
                    .enumerate()
                    .filter(|&(k, &m)| {
                        m && scene.image.as_raw()[3 * k..3 * k + 3]
                            != plain.image.as_raw()[3 * k..3 * k + 3]
                    })
                    .count();
                assert!(
                    differing as f32 >= 0.9 * inst.mask.count() as f32,
                    "seed {seed}: {differing} of {}",
                    inst.mask.count()
                );
                covered.union_with(&inst.mask);
            }
            // with no distractors, every pixel outside the objects is the pure background
            for (k, m) in covered.iter().enumerate() {
                if !m {
                    assert_eq!(
                        scene.image.as_raw()[3 * k..3 * k + 3],
                        plain.image.as_raw()[3 * k..3 * k + 3]
                    );
                }
            }
            let bg = &scene.concepts[&VOCAB[scene_cid(scene.scene) as usize]];
            assert_eq!(bg.count() + covered.count(), (w * h) as usize);
        }
    }

    #[test]
    fn main_object_is_first_largest_and_fully_visible_extras_differ() {
        let config = SceneConfig {
            min_objects: 3,
            max_objects: 4,
            ..small()
        };
        for seed in 0..40u64 {
            let scene = Scene::generate(seed, &config).unwrap();
            let main = &scene.instances[0];
            assert_eq!(main.kind, scene.object);
            assert!(scene.instances.len() >= 2, "seed {seed}: extras vanished");
            for extra in &scene.instances[1..] {
                assert_ne!(extra.kind, scene.object);
                assert!(
                    extra.mask.count() < main.mask.count(),
                    "seed {seed}: extra {} not smaller",
                    extra.kind
                );
            }
            assert_eq!(scene.object_mask(), main.mask);
            // drawn last over everything: the whole main object is visible, so drawing it
            // alone gives the same mask
            let alone = Scene::generate_with(
                seed,
                &SceneConfig {
                    min_objects: 1,
                    max_objects: 1,
                    distractors: 0,
                    ..config.clone()
                },
                Some(scene.object),
                Some(scene.scene),
            );
            let alone = alone.unwrap();
            // the main object's pose is drawn before the number of extras matters
            if alone.instances[0].bbox == main.bbox {
                assert_eq!(alone.instances[0].mask, main.mask);
            }
        }
    }

    #[test]
    fn every_kind_can_be_forced() {
        let config = SceneConfig {
            max_objects: 3,
            ..small()
        };
        for (i, kind) in ObjectKind::ALL.into_iter().enumerate() {
            for scene_kind in SceneKind::ALL {
                let s = Scene::generate_with(i as u64 * 10, &config, Some(kind), Some(scene_kind))
                    .unwrap();
                assert_eq!(s.object, kind);
                assert_eq!(s.instances[0].kind, kind);
                assert_eq!(s.scene, scene_kind);
                let c = Concept::from_name(scene_kind.name()).unwrap();
                assert!(s.concepts.contains_key(&c));
            }
        }
    }

    #[test]
    fn concepts_are_in_the_vocabulary_and_non_empty() {
        let vocab = all_concepts();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..60u64 {
            let s = Scene::generate(seed, &small()).unwrap();
            for (c, m) in &s.concepts {
                assert!(vocab.contains(c), "{c} not in the vocabulary");
                assert!(m.count() > 0, "{c} is empty");
                assert_eq!((m.width(), m.height()), s.image.dimensions());
                seen.insert(c.name);
            }
            assert_eq!(
                s.concept_names(),
                s.concepts.keys().map(|c| c.name).collect::<Vec<_>>()
            );
            // the main object always shows at least one part and one colour
            let main = &s.instances[0].mask;
            let on_main = |kind| {
                s.concepts
                    .iter()
                    .any(|(c, m)| c.kind == kind && m.iou(main) > 0.0)
            };
            assert!(on_main(ConceptKind::Part) && on_main(ConceptKind::Colour));
            // the scene concept never covers objects
            let bg = &s.concepts[&Concept::from_name(s.scene.name()).unwrap()];
            assert_eq!(bg.iou(main), 0.0);
        }
        for name in [
            "fin", "tail", "eye", "wheel", "window", "door", "roof", "petal", "stem", "cap",
            "vein", "orange", "red",
        ] {
            assert!(seen.contains(name), "{name} never appeared in 60 scenes");
        }
    }

    #[test]
    fn bad_configs_are_errors() {
        let bad = [
            SceneConfig {
                width: 0,
                ..SceneConfig::default()
            },
            SceneConfig {
                height: 0,
                ..SceneConfig::default()
            },
            SceneConfig {
                min_objects: 3,
                max_objects: 2,
                ..SceneConfig::default()
            },
            SceneConfig {
                min_objects: 0,
                ..SceneConfig::default()
            },
            SceneConfig {
                min_objects: 0,
                max_objects: 0,
                ..SceneConfig::default()
            },
            SceneConfig {
                object_scale: (0.0, 0.5),
                ..SceneConfig::default()
            },
            SceneConfig {
                object_scale: (0.6, 0.4),
                ..SceneConfig::default()
            },
            SceneConfig {
                object_scale: (0.5, 1.5),
                ..SceneConfig::default()
            },
            SceneConfig {
                object_scale: (f32::NAN, 0.5),
                ..SceneConfig::default()
            },
            SceneConfig {
                width: 20,
                height: 20,
                object_scale: (0.1, 0.2),
                ..SceneConfig::default()
            },
        ];
        for config in bad {
            let err = config.validate().unwrap_err();
            assert!(matches!(err, SceneError::InvalidConfig { .. }));
            assert!(Scene::generate(1, &config).is_err());
            assert!(
                err.to_string().starts_with("invalid scene config: `"),
                "{err}"
            );
        }
        let err = SceneConfig {
            width: 0,
            ..SceneConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("width") && err.contains("16 to 8192"), "{err}");
        assert!(SceneConfig::default().validate().is_ok());
    }

    #[test]
    fn names_round_trip_and_errors_list_known_names() {
        for k in ObjectKind::ALL {
            assert_eq!(ObjectKind::from_name(k.name()).unwrap(), k);
            assert_eq!(k.to_string().parse::<ObjectKind>().unwrap(), k);
            assert_eq!(ObjectKind::ALL[k.index()], k);
        }
        for k in SceneKind::ALL {
            assert_eq!(SceneKind::from_name(k.name()).unwrap(), k);
            assert_eq!(SceneKind::ALL[k.index()], k);
        }
        assert_eq!(
            ObjectKind::from_name(" Goldfish ").unwrap(),
            ObjectKind::Goldfish
        );
        assert_eq!(ObjectKind::Goldfish.name(), "goldfish");
        let err = ObjectKind::from_name("fsh").unwrap_err().to_string();
        assert_eq!(err, "unknown object kind `fsh`; known: goldfish, ball, star, flower, house, car, leaf, mushroom");
        let err = SceneKind::from_name("lava").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown scene kind `lava`; known: water, grass, sand, sky, brick, snow"
        );
    }

    #[test]
    fn renders_at_other_sizes() {
        for (w, h) in [(64, 64), (300, 200), (200, 300)] {
            for seed in 0..8u64 {
                let s = Scene::generate(seed, &cfg(w, h)).unwrap();
                assert_eq!(s.image.dimensions(), (w, h));
                for inst in &s.instances {
                    assert_eq!((inst.mask.width(), inst.mask.height()), (w, h));
                    assert!(inst.mask.count() > 0);
                }
                for m in s.concepts.values() {
                    assert_eq!((m.width(), m.height()), (w, h));
                }
            }
        }
    }

    #[test]
    fn resolution_changes_sampling_not_the_scene() {
        let centroid = |m: &Mask| {
            let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0.0f64);
            for y in 0..m.height() {
                for x in 0..m.width() {
                    if m.get(x, y) {
                        sx += (x as f64 + 0.5) / m.width() as f64;
                        sy += (y as f64 + 0.5) / m.height() as f64;
                        n += 1.0;
                    }
                }
            }
            (sx / n, sy / n, n / (m.width() * m.height()) as f64)
        };
        for seed in 0..10u64 {
            let a = Scene::generate(seed, &cfg(224, 224)).unwrap();
            let b = Scene::generate(seed, &cfg(128, 128)).unwrap();
            assert_eq!(
                (a.object, a.scene, a.instances.len()),
                (b.object, b.scene, b.instances.len())
            );
            let (ca, cb) = (
                centroid(&a.instances[0].mask),
                centroid(&b.instances[0].mask),
            );
            assert!(
                (ca.0 - cb.0).abs() < 0.01 && (ca.1 - cb.1).abs() < 0.01,
                "{ca:?} vs {cb:?}"
            );
            assert!(
                (ca.2 - cb.2).abs() < 0.1 * ca.2,
                "area fractions {ca:?} vs {cb:?}"
            );
        }
    }

    #[test]
    fn mask_operations() {
        let a = Mask::from_fn(8, 4, |x, _| x < 4);
        let mut b = Mask::new(8, 4);
        assert!(b.is_empty());
        b.set(3, 0, true);
        b.set(7, 3, true);
        assert_eq!((a.count(), b.count()), (16, 2));
        assert_eq!(a.iou(&b), b.iou(&a));
        assert!((a.iou(&b) - 1.0 / 17.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(Mask::new(2, 2).iou(&Mask::new(2, 2)), 0.0);
        assert_eq!(a.iou(&Mask::new(4, 4)), 0.0);
        assert!(!a.get(100, 100));
        assert_eq!(b.bbox(), Some((3, 0, 8, 4)));
        let g = a.to_gray_image();
        assert_eq!((g.get_pixel(0, 0).0[0], g.get_pixel(7, 0).0[0]), (255, 0));
        let mut u = a.clone();
        u.union_with(&b);
        assert_eq!(u.count(), 17);
        assert_eq!(u.iter().filter(|&v| v).count(), 17);
    }
}
