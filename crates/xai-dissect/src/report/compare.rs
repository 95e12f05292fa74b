//! The comparison of two dissections: which concepts dominate each layer in each model,
//! what each model has alone, and how much their layers' concept sets overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::canvas::xml_escape;
use super::charts::{self, KindColours, PairedBar};
use super::csv::row;
use super::document::{md_cell, pct, CSS};
use super::summary::{concept_counts, layer_order, summarize_layer, LayerSummary, NO_KIND};
use super::{to_json, write_atomic, write_chart, ReportConfig, Result};
use crate::label::Dissection;

/// Bars per layer in the side-by-side chart, at most.
const CHART_CONCEPTS: usize = 8;

/// One layer in both models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerComparison {
    /// Layer name.
    pub layer: String,
    /// The layer's summary in model A; `None` when A has no such layer.
    pub a: Option<LayerSummary>,
    /// The layer's summary in model B; `None` when B has no such layer.
    pub b: Option<LayerSummary>,
    /// Jaccard index of the two sets of best concepts (|A ∩ B| / |A ∪ B|; 1 when both are
    /// empty); `None` when the layer is missing from one model.
    pub jaccard: Option<f64>,
    /// Concepts that label units of this layer in both models, sorted.
    pub shared: Vec<String>,
    /// Concepts that label units of this layer in A only, sorted.
    pub only_a: Vec<String>,
    /// Concepts that label units of this layer in B only, sorted.
    pub only_b: Vec<String>,
}

/// What `comparison.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Model A's name.
    pub a_model: String,
    /// Model B's name.
    pub b_model: String,
    /// A's layers in order, then B's other layers.
    pub layers: Vec<LayerComparison>,
    /// Concepts that label some unit of A and no unit of B (any layer), sorted.
    pub unique_to_a: Vec<String>,
    /// Concepts that label some unit of B and no unit of A (any layer), sorted.
    pub unique_to_b: Vec<String>,
}

fn concept_set<'a>(d: &'a Dissection, layer: Option<&str>) -> BTreeSet<&'a str> {
    d.labels
        .iter()
        .filter(|l| layer.is_none_or(|x| l.layer == x))
        .map(|l| l.concept.as_str())
        .collect()
}

fn strings(set: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
    set.into_iter().map(|s| s.as_ref().to_string()).collect()
}

/// The numbers of the comparison of `a` and `b`, keeping `top_n` concepts per layer summary.
pub fn compare_dissections(a: &Dissection, b: &Dissection, top_n: usize) -> Comparison {
    let mut names = layer_order(a);
    for l in layer_order(b) {
        if !names.contains(&l) {
            names.push(l);
        }
    }
    let has = |d: &Dissection, l: &str| {
        d.layers.iter().any(|x| x == l) || d.labels.iter().any(|x| x.layer == l)
    };
    let layers = names
        .into_iter()
        .map(|layer| {
            let (in_a, in_b) = (has(a, &layer), has(b, &layer));
            let sa = concept_set(a, Some(&layer));
            let sb = concept_set(b, Some(&layer));
            let union = sa.union(&sb).count();
            let shared: Vec<_> = sa.intersection(&sb).collect();
            let jaccard = (in_a && in_b).then(|| {
                if union == 0 {
                    1.0
                } else {
                    shared.len() as f64 / union as f64
                }
            });
            LayerComparison {
                a: in_a.then(|| summarize_layer(a, &layer, top_n)),
                b: in_b.then(|| summarize_layer(b, &layer, top_n)),
                jaccard,
                shared: strings(shared),
                only_a: strings(sa.difference(&sb)),
                only_b: strings(sb.difference(&sa)),
                layer,
            }
        })
        .collect();
    let (all_a, all_b) = (concept_set(a, None), concept_set(b, None));
    Comparison {
        a_model: a.model.clone(),
        b_model: b.model.clone(),
        layers,
        unique_to_a: strings(all_a.difference(&all_b)),
        unique_to_b: strings(all_b.difference(&all_a)),
    }
}

/// Per layer and concept: units and share in A and in B.
struct Row {
    concept: String,
    kind: String,
    a: (usize, f64),
    b: (usize, f64),
}

fn layer_rows(a: &Dissection, b: &Dissection, layer: &str) -> Vec<Row> {
    let mut m: BTreeMap<String, Row> = BTreeMap::new();
    for (side, d) in [a, b].into_iter().enumerate() {
        for c in concept_counts(d, layer) {
            let r = m.entry(c.concept.clone()).or_insert_with(|| Row {
                concept: c.concept.clone(),
                kind: c.kind.clone(),
                a: (0, 0.0),
                b: (0, 0.0),
            });
            if r.kind == NO_KIND {
                r.kind = c.kind.clone();
            }
            if side == 0 {
                r.a = (c.units, c.share);
            } else {
                r.b = (c.units, c.share);
            }
        }
    }
    let mut rows: Vec<Row> = m.into_values().collect();
    rows.sort_by(|x, y| (y.a.1 + y.b.1).total_cmp(&(x.a.1 + x.b.1)));
    rows
}

/// Writes the comparison of `a` and `b` into `out_dir` with the default [`ReportConfig`] and
/// returns the files written:
///
/// | file | what |
/// |---|---|
/// | `comparison.json` | the [`Comparison`] |
/// | `comparison.csv` | `layer,concept,kind,units_a,share_a,units_b,share_b`, every concept of every layer |
/// | `comparison_layers.csv` | per layer: units, distinct concepts, shared, Jaccard, object-/scene-like shares, top concept of each model |
/// | `compare_top_concepts.{svg,png}` | per layer, the top concepts of A and B side by side (share of units) |
/// | `compare_kinds.{svg,png}` | per model and layer, the share of units per concept kind |
/// | `comparison.md`, `comparison.html` | the report |
///
/// ```
/// use xai_dissect::{Dissection, NeuronLabel};
/// let model = |name: &str, concepts: &[&str]| Dissection {
///     model: name.into(),
///     method: "clip".into(),
///     similarity: "soft-wpmi".into(),
///     layers: vec!["layer4".into()],
///     probe_images: 10,
///     labels: concepts
///         .iter()
///         .enumerate()
///         .map(|(unit, c)| NeuronLabel {
///             layer: "layer4".into(),
///             unit,
///             concept: c.to_string(),
///             similarity: 0.3,
///             top_k: vec![],
///             top_images: vec![],
///         })
///         .collect(),
///     concept_kinds: Default::default(),
/// };
/// let a = model("objects", &["fin", "fin", "wheel", "water"]);
/// let b = model("scenes", &["water", "sky", "sky", "fin"]);
/// let dir = tempfile::tempdir()?;
/// let files = xai_dissect::report::compare(&a, &b, dir.path())?;
/// assert!(files.contains(&dir.path().join("comparison.html")));
/// let c = xai_dissect::report::compare_dissections(&a, &b, 10);
/// assert_eq!(c.layers[0].jaccard, Some(0.5)); // {fin, water} of {fin, wheel, water, sky}
/// assert_eq!(c.unique_to_a, ["wheel"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn compare(a: &Dissection, b: &Dissection, out_dir: &Path) -> Result<Vec<PathBuf>> {
    compare_with(a, b, out_dir, &ReportConfig::default())
}

/// [`compare`] with explicit settings (only [`ReportConfig::top_concepts`] matters here).
pub fn compare_with(
    a: &Dissection,
    b: &Dissection,
    out_dir: &Path,
    cfg: &ReportConfig,
) -> Result<Vec<PathBuf>> {
    let c = compare_dissections(a, b, cfg.top_concepts);
    let mut files = Vec::new();
    let put = |name: &str, bytes: &[u8], files: &mut Vec<PathBuf>| -> Result<()> {
        let path = out_dir.join(name);
        write_atomic(&path, bytes)?;
        files.push(path);
        Ok(())
    };
    put(
        "comparison.json",
        to_json(&c, "comparison")?.as_bytes(),
        &mut files,
    )?;

    let mut csv = row([
        "layer", "concept", "kind", "units_a", "share_a", "units_b", "share_b",
    ]);
    let mut bars = Vec::new();
    for l in &c.layers {
        let rows = layer_rows(a, b, &l.layer);
        for r in &rows {
            csv.push_str(&row([
                l.layer.as_str(),
                &r.concept,
                &r.kind,
                &r.a.0.to_string(),
                &format!("{:.6}", r.a.1),
                &r.b.0.to_string(),
                &format!("{:.6}", r.b.1),
            ]));
        }
        // The chart shows the union of each model's top concepts, most frequent overall first.
        let top = cfg.top_concepts.min(CHART_CONCEPTS);
        let top_a: BTreeSet<&str> =
            l.a.iter()
                .flat_map(|s| s.top_concepts.iter().take(top))
                .map(|c| c.concept.as_str())
                .collect();
        let top_b: BTreeSet<&str> =
            l.b.iter()
                .flat_map(|s| s.top_concepts.iter().take(top))
                .map(|c| c.concept.as_str())
                .collect();
        let paired: Vec<PairedBar> = rows
            .iter()
            .filter(|r| top_a.contains(r.concept.as_str()) || top_b.contains(r.concept.as_str()))
            .map(|r| PairedBar {
                concept: r.concept.clone(),
                a: r.a.1,
                b: r.b.1,
            })
            .collect();
        bars.push((l.layer.clone(), paired));
    }
    put("comparison.csv", csv.as_bytes(), &mut files)?;

    let mut lcsv = row([
        "layer",
        "units_a",
        "units_b",
        "distinct_a",
        "distinct_b",
        "shared",
        "jaccard",
        "object_like_a",
        "object_like_b",
        "scene_like_a",
        "scene_like_b",
        "top_a",
        "top_b",
    ]);
    let opt = |v: Option<String>| v.unwrap_or_default();
    for l in &c.layers {
        let top = |s: &Option<LayerSummary>| {
            opt(s
                .as_ref()
                .and_then(|s| s.top_concepts.first())
                .map(|c| c.concept.clone()))
        };
        lcsv.push_str(&row([
            l.layer.as_str(),
            &opt(l.a.as_ref().map(|s| s.units.to_string())),
            &opt(l.b.as_ref().map(|s| s.units.to_string())),
            &opt(l.a.as_ref().map(|s| s.distinct_concepts.to_string())),
            &opt(l.b.as_ref().map(|s| s.distinct_concepts.to_string())),
            &l.shared.len().to_string(),
            &opt(l.jaccard.map(|j| format!("{j:.6}"))),
            &opt(l.a.as_ref().map(|s| format!("{:.6}", s.object_like_share))),
            &opt(l.b.as_ref().map(|s| format!("{:.6}", s.object_like_share))),
            &opt(l.a.as_ref().map(|s| format!("{:.6}", s.scene_like_share))),
            &opt(l.b.as_ref().map(|s| format!("{:.6}", s.scene_like_share))),
            &top(&l.a),
            &top(&l.b),
        ]));
    }
    put("comparison_layers.csv", lcsv.as_bytes(), &mut files)?;

    let names = [c.a_model.as_str(), c.b_model.as_str()];
    let title = format!("Top concepts per layer: A {} vs B {}", names[0], names[1]);
    write_chart(
        out_dir,
        "compare_top_concepts",
        &charts::compare_top(&title, &bars, names),
        &mut files,
    )?;
    let mut kind_rows = Vec::new();
    for l in &c.layers {
        for (tag, s) in [("A", &l.a), ("B", &l.b)] {
            if let Some(s) = s {
                kind_rows.push((format!("{tag} {}", l.layer), &s.kind_shares));
            }
        }
    }
    let kinds = KindColours::new(
        kind_rows
            .iter()
            .flat_map(|(_, k)| k.keys().map(String::as_str)),
    );
    let title = "Concept kinds per model and layer";
    write_chart(
        out_dir,
        "compare_kinds",
        &charts::kind_shares(title, &kind_rows, &kinds),
        &mut files,
    )?;

    put("comparison.md", markdown(&c, a, b).as_bytes(), &mut files)?;
    put("comparison.html", html(&c, a, b).as_bytes(), &mut files)?;
    Ok(files)
}

fn side_by_side(l: &LayerComparison) -> Vec<[String; 2]> {
    let fmt = |s: &Option<LayerSummary>, i: usize| {
        s.as_ref()
            .and_then(|s| s.top_concepts.get(i))
            .map_or(String::new(), |c| {
                format!("{} ({}, {})", c.concept, c.units, pct(c.share))
            })
    };
    let n = [&l.a, &l.b]
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.top_concepts.len()))
        .max()
        .unwrap_or(0);
    (0..n).map(|i| [fmt(&l.a, i), fmt(&l.b, i)]).collect()
}

fn share(s: &Option<LayerSummary>, f: impl Fn(&LayerSummary) -> f64) -> String {
    s.as_ref().map_or("–".into(), |s| pct(f(s)))
}

fn units(s: &Option<LayerSummary>) -> String {
    s.as_ref().map_or("–".into(), |s| {
        format!("{} / {}", s.units, s.distinct_concepts)
    })
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn markdown(c: &Comparison, a: &Dissection, b: &Dissection) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Comparison: A `{}` vs B `{}`\n\nA: method `{}`, similarity `{}`, {} probe images, {} units. \
         B: method `{}`, similarity `{}`, {} probe images, {} units.\n",
        c.a_model, c.b_model, a.method, a.similarity, a.probe_images, a.labels.len(),
        b.method, b.similarity, b.probe_images, b.labels.len()
    );
    s.push_str("Files: [comparison.csv](comparison.csv) (every concept of every layer), [comparison_layers.csv](comparison_layers.csv), [comparison.json](comparison.json).\n\n");
    s.push_str("![top concepts, A vs B](compare_top_concepts.png)\n\n([SVG](compare_top_concepts.svg))\n\n");
    s.push_str(
        "![concept kinds per model and layer](compare_kinds.png)\n\n([SVG](compare_kinds.svg))\n\n",
    );
    s.push_str("## Overlap per layer\n\n| layer | A units / distinct | B units / distinct | shared concepts | Jaccard | object-like A | object-like B | scene-like A | scene-like B |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for l in &c.layers {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            md_cell(&l.layer),
            units(&l.a),
            units(&l.b),
            l.shared.len(),
            l.jaccard.map_or("–".into(), |j| format!("{j:.3}")),
            share(&l.a, |s| s.object_like_share),
            share(&l.b, |s| s.object_like_share),
            share(&l.a, |s| s.scene_like_share),
            share(&l.b, |s| s.scene_like_share),
        );
    }
    for l in &c.layers {
        let _ = writeln!(
            s,
            "\n## {}\n\nDominant concepts (units, share):\n\n| # | A {} | B {} |\n|---:|---|---|",
            md_cell(&l.layer),
            md_cell(&c.a_model),
            md_cell(&c.b_model)
        );
        for (i, [x, y]) in side_by_side(l).iter().enumerate() {
            let _ = writeln!(s, "| {} | {} | {} |", i + 1, md_cell(x), md_cell(y));
        }
        let _ = writeln!(
            s,
            "\nOnly in A: {}.\n\nOnly in B: {}.",
            md_cell(&list(&l.only_a)),
            md_cell(&list(&l.only_b))
        );
    }
    let _ = writeln!(
        s,
        "\n## Concepts unique to each model (all layers)\n\nA `{}`: {}.\n\nB `{}`: {}.",
        c.a_model,
        list(&c.unique_to_a),
        c.b_model,
        list(&c.unique_to_b)
    );
    s
}

fn html(c: &Comparison, a: &Dissection, b: &Dissection) -> String {
    let e = xml_escape;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Comparison: {} vs {}</title><style>{CSS}</style></head><body>\n",
        e(&c.a_model),
        e(&c.b_model)
    );
    let _ = writeln!(
        s,
        "<h1>Comparison: A <code>{}</code> vs B <code>{}</code></h1><p>A: method {}, similarity {}, {} probe images, {} units. B: method {}, similarity {}, {} probe images, {} units.</p>",
        e(&c.a_model), e(&c.b_model), e(&a.method), e(&a.similarity), a.probe_images, a.labels.len(),
        e(&b.method), e(&b.similarity), b.probe_images, b.labels.len()
    );
    s.push_str("<p>Files: <a href=\"comparison.csv\">comparison.csv</a> (every concept of every layer), <a href=\"comparison_layers.csv\">comparison_layers.csv</a>, <a href=\"comparison.json\">comparison.json</a>.</p>\n");
    s.push_str("<p><img src=\"compare_top_concepts.svg\" alt=\"top concepts, A vs B\"></p>\n<p><img src=\"compare_kinds.svg\" alt=\"concept kinds per model and layer\"></p>\n");
    s.push_str("<h2>Overlap per layer</h2><table><tr><th>layer</th><th>A units / distinct</th><th>B units / distinct</th><th>shared concepts</th><th>Jaccard</th><th>object-like A</th><th>object-like B</th><th>scene-like A</th><th>scene-like B</th></tr>\n");
    for l in &c.layers {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            e(&l.layer),
            units(&l.a),
            units(&l.b),
            l.shared.len(),
            l.jaccard.map_or("–".into(), |j| format!("{j:.3}")),
            share(&l.a, |s| s.object_like_share),
            share(&l.b, |s| s.object_like_share),
            share(&l.a, |s| s.scene_like_share),
            share(&l.b, |s| s.scene_like_share),
        );
    }
    s.push_str("</table>\n");
    for l in &c.layers {
        let _ = writeln!(
            s,
            "<h2>{}</h2><p>Dominant concepts (units, share):</p><table><tr><th>#</th><th>A {}</th><th>B {}</th></tr>",
            e(&l.layer),
            e(&c.a_model),
            e(&c.b_model)
        );
        for (i, [x, y]) in side_by_side(l).iter().enumerate() {
            let _ = writeln!(
                s,
                "<tr><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                e(x),
                e(y)
            );
        }
        let _ = writeln!(
            s,
            "</table><p>Only in A: {}.</p><p>Only in B: {}.</p>",
            e(&list(&l.only_a)),
            e(&list(&l.only_b))
        );
    }
    let _ = writeln!(
        s,
        "<h2>Concepts unique to each model (all layers)</h2><p>A <code>{}</code>: {}.</p><p>B <code>{}</code>: {}.</p></body></html>",
        e(&c.a_model),
        e(&list(&c.unique_to_a)),
        e(&c.b_model),
        e(&list(&c.unique_to_b))
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{dissection, testworld_dissection};

    #[test]
    fn jaccard_and_unique_concepts_follow_the_sets() {
        let a = dissection(
            "a",
            &[
                ("layer4", &[("fin", 0.1), ("fin", 0.1), ("red", 0.1)]),
                ("fc", &[("x", 0.1)]),
            ],
        );
        let b = dissection(
            "b",
            &[
                ("layer4", &[("fin", 0.1), ("water", 0.1)]),
                ("layer3", &[("sky", 0.1)]),
            ],
        );
        let c = compare_dissections(&a, &b, 5);
        let names: Vec<_> = c.layers.iter().map(|l| l.layer.as_str()).collect();
        assert_eq!(names, ["layer4", "fc", "layer3"]);
        let l4 = &c.layers[0];
        assert_eq!(l4.jaccard, Some(1.0 / 3.0));
        assert_eq!(
            (l4.shared.clone(), l4.only_a.clone(), l4.only_b.clone()),
            (
                vec!["fin".to_string()],
                vec!["red".to_string()],
                vec!["water".to_string()]
            )
        );
        assert_eq!(c.layers[1].jaccard, None);
        assert!(c.layers[1].b.is_none());
        assert_eq!(c.unique_to_a, ["red", "x"]);
        assert_eq!(c.unique_to_b, ["sky", "water"]);
    }

    #[test]
    fn the_comparison_csv_has_every_concept_of_every_layer() {
        let dir = tempfile::tempdir().unwrap();
        let a = testworld_dissection("testworld-objects", 1);
        let b = testworld_dissection("testworld-scenes", 2);
        let files = compare(&a, &b, dir.path()).unwrap();
        assert_eq!(files.len(), 9);
        let csv = std::fs::read_to_string(dir.path().join("comparison.csv")).unwrap();
        let c = compare_dissections(&a, &b, 10);
        let expected: usize = c
            .layers
            .iter()
            .map(|l| l.shared.len() + l.only_a.len() + l.only_b.len())
            .sum();
        assert_eq!(csv.lines().count(), 1 + expected);
        // Shares of each model sum to one per layer.
        let mut sum_a: BTreeMap<String, f64> = BTreeMap::new();
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            *sum_a.entry(f[0].to_string()).or_default() += f[4].parse::<f64>().unwrap();
        }
        for v in sum_a.values() {
            assert!((v - 1.0).abs() < 1e-5, "{sum_a:?}");
        }
        let back: Comparison = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("comparison.json")).unwrap(),
        )
        .unwrap();
        // serde_json's float parsing may differ in the last digit, so compare with a tolerance.
        assert_eq!(
            (&back.unique_to_a, &back.unique_to_b),
            (&c.unique_to_a, &c.unique_to_b)
        );
        for (x, y) in back.layers.iter().zip(&c.layers) {
            assert_eq!(
                (&x.layer, &x.shared, &x.only_a),
                (&y.layer, &y.shared, &y.only_a)
            );
            assert!((x.jaccard.unwrap() - y.jaccard.unwrap()).abs() < 1e-12);
        }
    }
}
