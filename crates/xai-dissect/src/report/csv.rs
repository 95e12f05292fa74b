//! `descriptions.csv`: one row per neuron, as CLIP-Dissect writes it, plus the top-k.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::label::Dissection;

/// `field` as one CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma,
/// a quote, a line break, or leading/trailing spaces (which readers would otherwise trim).
pub(crate) fn quote(field: &str) -> Cow<'_, str> {
    let needs =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// One CSV line (ending with `\n`) of `fields`.
pub(crate) fn row<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut s = fields.into_iter().map(quote).collect::<Vec<_>>().join(",");
    s.push('\n');
    s
}

/// The text of `descriptions.csv`: header `layer,unit,description,similarity,top_k`, one row
/// per label in the dissection's order. `top_k` is `concept:score` pairs joined by `;`
/// (a concept may itself hold `:`; the score is after the last one). Scores are written in
/// the shortest form that reads back as the same `f32`.
pub(crate) fn descriptions(d: &Dissection) -> String {
    let mut s = row(["layer", "unit", "description", "similarity", "top_k"]);
    for l in &d.labels {
        let mut top = String::new();
        for (i, c) in l.top_k.iter().enumerate() {
            if i > 0 {
                top.push(';');
            }
            let _ = write!(top, "{}:{}", c.concept, c.score);
        }
        s.push_str(&row([
            l.layer.as_str(),
            &l.unit.to_string(),
            &l.concept,
            &l.similarity.to_string(),
            &top,
        ]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::ConceptScore;
    use crate::report::testing::dissection;

    /// A strict RFC 4180 reader, to check that what we write reads back.
    fn parse(text: &str) -> Vec<Vec<String>> {
        let mut rows = vec![];
        let mut row = vec![];
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => field.push(c),
            }
        }
        rows
    }

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(quote("fin"), "fin");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote(" padded"), "\" padded\"");
        assert_eq!(quote(""), "");
    }

    #[test]
    fn descriptions_read_back_field_for_field() {
        let mut d = dissection(
            "m",
            &[(
                "layer4",
                &[("fin", 0.5), ("hot dog, with \"mustard\"", 0.125)],
            )],
        );
        d.labels[1].top_k = vec![
            ConceptScore {
                concept: "a;b".into(),
                score: 0.1,
            },
            ConceptScore {
                concept: "c".into(),
                score: -2.5,
            },
        ];
        let text = descriptions(&d);
        let rows = parse(&text);
        assert_eq!(
            rows[0],
            ["layer", "unit", "description", "similarity", "top_k"]
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2][2], "hot dog, with \"mustard\"");
        assert_eq!(rows[2][1], "1");
        assert_eq!(rows[2][3].parse::<f32>().ok(), Some(0.125));
        assert_eq!(rows[2][4], "a;b:0.1;c:-2.5");
        assert_eq!(rows[1][4], "");
    }
}
