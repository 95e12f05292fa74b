//! `report.md` and `report.html` of one dissection.

use std::fmt::Write as _;

use super::canvas::xml_escape;
use super::summary::{kind_of, layer_labels, Summary};
use super::ReportConfig;
use crate::label::{Dissection, NeuronLabel};

/// A montage written for a unit, by its path relative to the output folder.
#[derive(Debug, Clone)]
pub(crate) struct MontageRef {
    pub(crate) layer: String,
    pub(crate) unit: usize,
    pub(crate) path: String,
}

/// The stylesheet of every HTML report: inline, so the page opens offline.
pub(crate) const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left}\
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}\
img{max-width:100%;border:1px solid #ddd;margin:.3em 0}.montages img{max-width:48%;margin-right:1%}\
.warn{color:#a40000}code{background:#f4f4f4;padding:0 .2em}";

/// A Markdown table cell: pipes escaped, line breaks as spaces.
pub(crate) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// `0.123` as `12.3%`.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The best-scoring `n` labels of a layer, highest first (ties by unit).
pub(crate) fn best_units<'a>(d: &'a Dissection, layer: &str, n: usize) -> Vec<&'a NeuronLabel> {
    let mut l = layer_labels(d, layer);
    l.sort_by(|a, b| {
        b.similarity
            .total_cmp(&a.similarity)
            .then(a.unit.cmp(&b.unit))
    });
    l.truncate(n);
    l
}

fn next_concepts(l: &NeuronLabel) -> String {
    l.top_k
        .iter()
        .take(3)
        .map(|c| format!("{} ({:.3})", c.concept, c.score))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything the two reports show.
pub(crate) struct Document<'a> {
    pub(crate) d: &'a Dissection,
    pub(crate) summary: &'a Summary,
    pub(crate) montages: &'a [MontageRef],
    pub(crate) warnings: &'a [String],
    pub(crate) cfg: &'a ReportConfig,
}

impl Document<'_> {
    fn montage_of(&self, layer: &str, unit: usize) -> Option<&MontageRef> {
        self.montages
            .iter()
            .find(|m| m.layer == layer && m.unit == unit)
    }

    fn intro(&self) -> String {
        let d = self.d;
        format!(
            "Method `{}`, similarity `{}`, {} probe images, {} layers, {} units.",
            d.method,
            d.similarity,
            d.probe_images,
            self.summary.layers.len(),
            d.labels.len()
        )
    }

    pub(crate) fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Dissection of `{}`\n\n{}\n",
            self.d.model,
            self.intro()
        );
        s.push_str(
            "Files: [descriptions.csv](descriptions.csv) (every unit), \
             [summary.json](summary.json), [dissection.json](dissection.json).\n\n",
        );
        s.push_str("## Concepts per layer\n\n");
        s.push_str(
            "![concept frequency](concept_frequency.png)\n\n([SVG](concept_frequency.svg))\n\n",
        );
        s.push_str("![concept kinds](concept_kinds.png)\n\n([SVG](concept_kinds.svg))\n\n");
        s.push_str("| layer | units | distinct concepts | mean similarity | object-like | scene-like | top concepts |\n|---|---:|---:|---:|---:|---:|---|\n");
        for l in &self.summary.layers {
            let top = l
                .top_concepts
                .iter()
                .take(5)
                .map(|c| format!("{} ({})", c.concept, c.units))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md_cell(&l.layer),
                l.units,
                l.distinct_concepts,
                l.mean_similarity.map_or("–".into(), |m| format!("{m:.4}")),
                pct(l.object_like_share),
                pct(l.scene_like_share),
                md_cell(&top)
            );
        }
        for l in &self.summary.layers {
            let _ = writeln!(s, "\n## {}\n", md_cell(&l.layer));
            s.push_str("| concept | kind | units | share |\n|---|---|---:|---:|\n");
            for c in &l.top_concepts {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    md_cell(&c.concept),
                    md_cell(&c.kind),
                    c.units,
                    pct(c.share)
                );
            }
            let best = best_units(self.d, &l.layer, self.cfg.report_units);
            if best.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "\nBest-scoring {} of {} units:\n\n| unit | concept | kind | similarity | next | montage |\n|---:|---|---|---:|---|---|",
                best.len(),
                l.units
            );
            for u in &best {
                let m = self
                    .montage_of(&l.layer, u.unit)
                    .map_or(String::new(), |m| format!("[png]({})", m.path));
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.4} | {} | {} |",
                    u.unit,
                    md_cell(&u.concept),
                    md_cell(kind_of(self.d, &u.concept)),
                    u.similarity,
                    md_cell(&next_concepts(u)),
                    m
                );
            }
            s.push('\n');
            for m in self
                .montages
                .iter()
                .filter(|m| m.layer == l.layer)
                .take(self.cfg.report_montages)
            {
                let _ = writeln!(s, "![{} unit {}]({})\n", md_cell(&m.layer), m.unit, m.path);
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "\n## Warnings ({})\n", self.warnings.len());
            for w in self.warnings.iter().take(50) {
                let _ = writeln!(s, "- {}", md_cell(w));
            }
            if self.warnings.len() > 50 {
                let _ = writeln!(s, "- … and {} more", self.warnings.len() - 50);
            }
        }
        s
    }

    pub(crate) fn html(&self) -> String {
        let e = xml_escape;
        let mut s = String::new();
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Dissection of {}</title><style>{CSS}</style></head><body>\n",
            e(&self.d.model)
        );
        let _ = writeln!(
            s,
            "<h1>Dissection of <code>{}</code></h1><p>{}</p>",
            e(&self.d.model),
            e(&self.intro()).replace('`', "")
        );
        s.push_str("<p>Files: <a href=\"descriptions.csv\">descriptions.csv</a> (every unit), <a href=\"summary.json\">summary.json</a>, <a href=\"dissection.json\">dissection.json</a>.</p>\n");
        s.push_str("<h2>Concepts per layer</h2>\n<p><img src=\"concept_frequency.svg\" alt=\"concept frequency per layer\"></p>\n<p><img src=\"concept_kinds.svg\" alt=\"share of concept kinds per layer\"></p>\n");
        s.push_str("<table><tr><th>layer</th><th>units</th><th>distinct concepts</th><th>mean similarity</th><th>object-like</th><th>scene-like</th><th>top concepts</th></tr>\n");
        for l in &self.summary.layers {
            let top = l
                .top_concepts
                .iter()
                .take(5)
                .map(|c| format!("{} ({})", c.concept, c.units))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
                e(&l.layer),
                l.units,
                l.distinct_concepts,
                l.mean_similarity.map_or("–".into(), |m| format!("{m:.4}")),
                pct(l.object_like_share),
                pct(l.scene_like_share),
                e(&top)
            );
        }
        s.push_str("</table>\n");
        for l in &self.summary.layers {
            let _ = writeln!(s, "<h2>{}</h2>", e(&l.layer));
            s.push_str(
                "<table><tr><th>concept</th><th>kind</th><th>units</th><th>share</th></tr>\n",
            );
            for c in &l.top_concepts {
                let _ = writeln!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                    e(&c.concept),
                    e(&c.kind),
                    c.units,
                    pct(c.share)
                );
            }
            s.push_str("</table>\n");
            let best = best_units(self.d, &l.layer, self.cfg.report_units);
            if !best.is_empty() {
                let _ = writeln!(
                    s,
                    "<details><summary>Best-scoring {} of {} units</summary><table><tr><th>unit</th><th>concept</th><th>kind</th><th>similarity</th><th>next</th><th>montage</th></tr>",
                    best.len(),
                    l.units
                );
                for u in &best {
                    let m = self
                        .montage_of(&l.layer, u.unit)
                        .map_or(String::new(), |m| {
                            format!("<a href=\"{}\">png</a>", e(&m.path))
                        });
                    let _ = writeln!(
                        s,
                        "<tr><td class=n>{}</td><td>{}</td><td>{}</td><td class=n>{:.4}</td><td>{}</td><td>{}</td></tr>",
                        u.unit,
                        e(&u.concept),
                        e(kind_of(self.d, &u.concept)),
                        u.similarity,
                        e(&next_concepts(u)),
                        m
                    );
                }
                s.push_str("</table></details>\n");
            }
            let shown: Vec<_> = self
                .montages
                .iter()
                .filter(|m| m.layer == l.layer)
                .take(self.cfg.report_montages)
                .collect();
            if !shown.is_empty() {
                s.push_str("<div class=montages>");
                for m in shown {
                    let _ = write!(
                        s,
                        "<img src=\"{}\" alt=\"{} unit {}\">",
                        e(&m.path),
                        e(&m.layer),
                        m.unit
                    );
                }
                s.push_str("</div>\n");
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(
                s,
                "<h2>Warnings ({})</h2><ul class=warn>",
                self.warnings.len()
            );
            for w in self.warnings.iter().take(50) {
                let _ = writeln!(s, "<li>{}</li>", e(w));
            }
            if self.warnings.len() > 50 {
                let _ = writeln!(s, "<li>… and {} more</li>", self.warnings.len() - 50);
            }
            s.push_str("</ul>\n");
        }
        s.push_str("</body></html>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::summarize;
    use crate::report::testing::dissection;

    #[test]
    fn reports_escape_what_users_name() {
        let d = dissection("m<1>", &[("layer4", &[("a|b <i>", 0.5), ("fin", 0.25)])]);
        let summary = summarize(&d, 10);
        let cfg = ReportConfig::default();
        let doc = Document {
            d: &d,
            summary: &summary,
            montages: &[],
            warnings: &["w & x".to_string()],
            cfg: &cfg,
        };
        let md = doc.markdown();
        assert!(md.contains("| a\\|b <i> | unknown | 1 | 50.0% |"), "{md}");
        assert!(md.contains("## Warnings (1)"));
        let html = doc.html();
        assert!(html.contains("a|b &lt;i&gt;"));
        assert!(html.contains("<title>Dissection of m&lt;1&gt;</title>"));
        assert!(html.contains("w &amp; x"));
        assert!(!html.contains("<i>"));
    }
}
