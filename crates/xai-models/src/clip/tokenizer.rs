//! CLIP's byte-level BPE tokenizer, as OpenAI's `SimpleTokenizer` (and open_clip's copy of it)
//! defines it.
//!
//! The vocabulary is built from a merges file alone (`bpe_simple_vocab_16e6.txt.gz`, gzip or
//! plain text): the 256 byte symbols, the same with `</w>`, one entry per merge, then
//! `<start_of_text>` and `<end_of_text>`. With the standard file these are ids 49406 and 49407.
//!
//! ## Cleaning
//!
//! The reference runs `ftfy.fix_text`, HTML-unescapes twice, collapses whitespace and
//! lower-cases. We do the same except for the parts of ftfy that need its large tables:
//!
//! - done: HTML unescaping as ftfy does it when the text has no `<` (repeated until nothing
//!   changes), then twice more as the reference does; numeric references (`&#233;`,
//!   `&#xE9;`, with HTML5's replacements for 0, surrogates and C1 codes) and the common named
//!   entities (see [`NAMED_ENTITIES`]); Unicode NFC; curly quotes to ASCII quotes; the Latin
//!   ligatures ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ; full-width ASCII (U+FF01–U+FF5E) and the ideographic space to
//!   their ASCII forms; line breaks (`\r\n`, `\r`, U+2028/9, U+0085) to `\n`; terminal escape
//!   sequences and control characters (other than tab and newline) removed; whitespace as
//!   Python's `str.split` sees it (which includes U+001C–U+001F).
//! - not done: mojibake repair (`Ã©` stays `Ã©`, ftfy makes it `é`), named entities outside
//!   the list, surrogate-pair repair. Text that is plain UTF-8 is not affected.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::{Device, Tensor};
use regex::Regex;

use crate::{Error, Result};

/// CLIP's context length: every tokenized text is this long.
pub const CONTEXT_LENGTH: usize = 77;

/// The number of merges the reference reads from the file (49152 − 256 − 2).
const MAX_MERGES: usize = 49152 - 256 - 2;

const START: &str = "<start_of_text>";
const END: &str = "<end_of_text>";

/// The named HTML entities the cleaner decodes (the others are left as they are).
pub const NAMED_ENTITIES: &[(&str, &str)] = &[
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", "\u{a0}"),
    ("copy", "©"),
    ("reg", "®"),
    ("trade", "™"),
    ("hellip", "…"),
    ("mdash", "—"),
    ("ndash", "–"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("deg", "°"),
    ("euro", "€"),
    ("pound", "£"),
    ("yen", "¥"),
    ("cent", "¢"),
    ("sect", "§"),
    ("middot", "·"),
    ("times", "×"),
    ("divide", "÷"),
    ("eacute", "é"),
    ("egrave", "è"),
    ("aacute", "á"),
    ("agrave", "à"),
    ("uuml", "ü"),
    ("ouml", "ö"),
    ("auml", "ä"),
    ("szlig", "ß"),
    ("ccedil", "ç"),
    ("ntilde", "ñ"),
];

/// Legacy entities that HTML (and Python's `html.unescape`) also accept without `;`.
const NO_SEMICOLON: &[&str] = &[
    "amp", "lt", "gt", "quot", "nbsp", "copy", "reg", "deg", "pound", "yen", "cent", "sect",
    "middot", "times", "divide", "eacute", "egrave", "aacute", "agrave", "uuml", "ouml", "auml",
    "szlig", "ccedil", "ntilde", "laquo", "raquo",
];

/// CLIP's BPE tokenizer.
///
/// ```no_run
/// use xai_models::clip::ClipTokenizer;
/// let tok = ClipTokenizer::from_file("bpe_simple_vocab_16e6.txt.gz".as_ref())?;
/// let ids = tok.tokenize(&["a photo of a cat"], false)?;
/// assert_eq!(ids[0][0], 49406);
/// assert_eq!(ids[0].len(), 77);
/// # Ok::<(), xai_models::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    byte_symbol: [char; 256],
    encoder: HashMap<String, u32>,
    ranks: HashMap<(String, String), usize>,
    start_id: u32,
    end_id: u32,
    pattern: Regex,
}

/// GPT-2's reversible map from bytes to printable characters.
fn byte_symbols() -> ([char; 256], Vec<u8>) {
    let mut kept: Vec<u8> = (b'!'..=b'~')
        .chain(0xa1..=0xac)
        .chain(0xae..=0xff)
        .collect();
    let mut map = ['\0'; 256];
    for &b in &kept {
        map[b as usize] = char::from(b);
    }
    let mut n = 0u32;
    let mut order = kept.clone();
    for b in 0..=255u8 {
        if !kept.contains(&b) {
            map[b as usize] = char::from_u32(256 + n).unwrap_or('\u{fffd}');
            order.push(b);
            n += 1;
        }
    }
    kept.clear();
    (map, order)
}

impl ClipTokenizer {
    /// Reads a merges file: gzip-compressed (`.gz`, told from its first bytes) or plain UTF-8
    /// text; the first line is a header, then one merge (`a b`) per line.
    pub fn from_file(merges: &Path) -> Result<Self> {
        let bytes = std::fs::read(merges).map_err(|e| Error::io(merges, e))?;
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = String::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut out)
                .map_err(|e| Error::Tokenizer {
                    path: merges.into(),
                    reason: format!("cannot decompress the gzip file: {e}"),
                })?;
            out
        } else {
            String::from_utf8(bytes).map_err(|_| Error::Tokenizer {
                path: merges.into(),
                reason: "not UTF-8 text nor a gzip file".into(),
            })?
        };
        Self::from_merges_text(&text).map_err(|reason| Error::Tokenizer {
            path: merges.into(),
            reason,
        })
    }

    /// Builds the tokenizer from the text of a merges file.
    pub fn from_merges_text(text: &str) -> std::result::Result<Self, String> {
        let lines: Vec<&str> = text.split('\n').collect();
        if text.trim().is_empty() {
            return Err(
                "the merges file is empty (expected a header line, then `a b` per line)".into(),
            );
        }
        let end = lines.len().min(MAX_MERGES + 1);
        let merges: Vec<Vec<&str>> = lines[1.min(end)..end]
            .iter()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let (byte_symbol, order) = byte_symbols();
        let mut vocab: Vec<String> = order
            .iter()
            .map(|&b| byte_symbol[b as usize].to_string())
            .collect();
        let with_end: Vec<String> = vocab.iter().map(|s| format!("{s}</w>")).collect();
        vocab.extend(with_end);
        let mut ranks = HashMap::new();
        for (rank, m) in merges.iter().enumerate() {
            vocab.push(m.concat());
            // Like a Python dict built from the merges: a later duplicate keeps its new rank.
            if let [a, b] = m.as_slice() {
                ranks.insert((a.to_string(), b.to_string()), rank);
            } else if !m.is_empty() {
                return Err(format!(
                    "line {} is `{}`, expected two space-separated parts",
                    rank + 2,
                    lines[rank + 1]
                ));
            }
        }
        vocab.push(START.into());
        vocab.push(END.into());
        let mut encoder = HashMap::with_capacity(vocab.len());
        for (id, s) in vocab.into_iter().enumerate() {
            // Python's dict(zip(vocab, ids)): the last occurrence of a string wins.
            encoder.insert(s, id as u32);
        }
        let start_id = encoder[START];
        let end_id = encoder[END];
        let pattern = Regex::new(&format!(
            r"(?i){START}|{END}|'s|'t|'re|'ve|'m|'ll|'d|\p{{L}}+|\p{{N}}|[^\s\p{{L}}\p{{N}}]+"
        ))
        .map_err(|e| format!("internal: bad pre-tokenizer pattern: {e}"))?;
        Ok(Self {
            byte_symbol,
            encoder,
            ranks,
            start_id,
            end_id,
            pattern,
        })
    }

    /// The id of `<start_of_text>` (49406 with the standard vocabulary).
    pub fn start_id(&self) -> u32 {
        self.start_id
    }

    /// The id of `<end_of_text>` (49407 with the standard vocabulary).
    pub fn end_id(&self) -> u32 {
        self.end_id
    }

    /// The number of ids (49408 with the standard vocabulary).
    pub fn vocab_size(&self) -> usize {
        self.end_id as usize + 1
    }

    /// The BPE ids of `text` after cleaning, without the start and end tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = clean(text);
        let mut ids = Vec::new();
        for piece in self.pattern.find_iter(&text) {
            let piece = piece.as_str();
            if piece == START || piece == END {
                ids.push(self.encoder[piece]);
                continue;
            }
            let symbols: Vec<char> = piece
                .bytes()
                .map(|b| self.byte_symbol[b as usize])
                .collect();
            for sym in self.bpe(&symbols) {
                // Every symbol is a byte symbol or a merge result, so it is in the vocabulary.
                if let Some(&id) = self.encoder.get(&sym) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    fn bpe(&self, symbols: &[char]) -> Vec<String> {
        let Some((last, init)) = symbols.split_last() else {
            return Vec::new();
        };
        let mut word: Vec<String> = init.iter().map(|c| c.to_string()).collect();
        word.push(format!("{last}</w>"));
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|p| self.ranks.get(&(p[0].clone(), p[1].clone())))
                .min()
                .copied();
            let Some(best) = best else { break };
            let mut merged = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len()
                    && self.ranks.get(&(word[i].clone(), word[i + 1].clone())) == Some(&best)
                {
                    merged.push(format!("{}{}", word[i], word[i + 1]));
                    i += 2;
                } else {
                    merged.push(word[i].clone());
                    i += 1;
                }
            }
            word = merged;
        }
        word
    }

    /// Each text as [`CONTEXT_LENGTH`] ids: start, BPE ids, end, zeros. A text that is too
    /// long is an error, or with `truncate` cut to 77 ids whose last is the end token.
    pub fn tokenize(&self, texts: &[&str], truncate: bool) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|text| {
                let mut ids = Vec::with_capacity(CONTEXT_LENGTH);
                ids.push(self.start_id);
                ids.extend(self.encode(text));
                ids.push(self.end_id);
                if ids.len() > CONTEXT_LENGTH {
                    if !truncate {
                        return Err(Error::TextTooLong {
                            text: text.chars().take(60).collect(),
                            tokens: ids.len(),
                            context: CONTEXT_LENGTH,
                        });
                    }
                    ids.truncate(CONTEXT_LENGTH);
                    ids[CONTEXT_LENGTH - 1] = self.end_id;
                }
                ids.resize(CONTEXT_LENGTH, 0);
                Ok(ids)
            })
            .collect()
    }

    /// [`tokenize`](Self::tokenize) as an `(N, 77)` u32 tensor.
    pub fn tokenize_tensor(
        &self,
        texts: &[&str],
        truncate: bool,
        device: &Device,
    ) -> Result<Tensor> {
        let ids = self.tokenize(texts, truncate)?;
        let flat: Vec<u32> = ids.into_iter().flatten().collect();
        Ok(Tensor::from_vec(
            flat,
            (texts.len(), CONTEXT_LENGTH),
            device,
        )?)
    }
}

/// Python's `str.isspace`, which (unlike Rust's `char::is_whitespace`) includes U+001C–U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The reference's cleaning (see the module docs for what of ftfy is covered).
pub fn clean(text: &str) -> String {
    let mut text = fix_text(text);
    for _ in 0..2 {
        text = html_unescape(&text);
    }
    let words: Vec<&str> = text.split(is_py_space).filter(|w| !w.is_empty()).collect();
    words.join(" ").to_lowercase()
}

/// The subset of `ftfy.fix_text` that we reproduce.
fn fix_text(text: &str) -> String {
    let mut text = remove_terminal_escapes(text);
    if !text.contains('<') {
        loop {
            let next = html_unescape(&text);
            if next == text {
                break;
            }
            text = next;
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\u{2028}' | '\u{2029}' | '\u{85}' => out.push('\n'),
            '‘' | '’' | '‚' | '‛' => out.push('\''),
            '“' | '”' | '„' | '‟' => out.push('"'),
            'ﬀ' => out.push_str("ff"),
            'ﬁ' => out.push_str("fi"),
            'ﬂ' => out.push_str("fl"),
            'ﬃ' => out.push_str("ffi"),
            'ﬄ' => out.push_str("ffl"),
            'ﬅ' | 'ﬆ' => out.push_str("st"),
            '\u{3000}' => out.push(' '),
            '\u{ff01}'..='\u{ff5e}' => {
                out.push(char::from_u32(c as u32 - 0xfee0).unwrap_or(c));
            }
            c if is_removed_control(c) => {}
            c => out.push(c),
        }
    }
    use unicode_normalization_alignments::UnicodeNormalization;
    out.nfc().map(|(c, _)| c).collect()
}

/// ftfy's `remove_control_chars` set (tab, newline and form feed are kept).
fn is_removed_control(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0x206a..=0x206f | 0xfeff | 0xfff9..=0xfffc
        | 0x1d173..=0x1d17a | 0xe0000..=0xe007f)
}

/// Removes `ESC [ … letter` sequences (ANSI colours and cursor moves).
fn remove_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            let rest: String = chars.clone().skip(1).collect();
            let len = rest
                .char_indices()
                .find(|(_, ch)| !(ch.is_ascii_digit() || *ch == ';' || *ch == '?'))
                .filter(|(_, ch)| ch.is_ascii_alphabetic());
            if let Some((i, _)) = len {
                for _ in 0..i + 2 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// HTML5 character references, as Python's `html.unescape` decodes them (named ones only
/// from [`NAMED_ENTITIES`]).
fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match decode_reference(after) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the reference at the start of `s` (just after `&`): the text and the bytes used.
fn decode_reference(s: &str) -> Option<(String, usize)> {
    if let Some(num) = s.strip_prefix('#') {
        let (hex, digits) = match num.strip_prefix(['x', 'X']) {
            Some(h) => (true, h),
            None => (false, num),
        };
        let len = digits
            .bytes()
            .take_while(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        if len == 0 {
            return None;
        }
        let value =
            u32::from_str_radix(&digits[..len], if hex { 16 } else { 10 }).unwrap_or(u32::MAX);
        let mut used = 1 + usize::from(hex) + len;
        if digits[len..].starts_with(';') {
            used += 1;
        }
        return Some((numeric_char(value).to_string(), used));
    }
    let name_len = s.bytes().take_while(|b| b.is_ascii_alphanumeric()).count();
    let name = &s[..name_len];
    if s[name_len..].starts_with(';') {
        if let Some((_, v)) = NAMED_ENTITIES.iter().find(|(n, _)| *n == name) {
            return Some((v.to_string(), name_len + 1));
        }
    }
    // Without `;`, the longest legacy name that prefixes the text.
    NO_SEMICOLON
        .iter()
        .filter(|n| name.starts_with(**n))
        .max_by_key(|n| n.len())
        .and_then(|n| NAMED_ENTITIES.iter().find(|(k, _)| k == n))
        .map(|(n, v)| (v.to_string(), n.len()))
}

/// HTML5's rules for numeric references: C1 codes as windows-1252, invalid ones as U+FFFD.
fn numeric_char(value: u32) -> char {
    const CP1252: [u32; 32] = [
        0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8d, 0x017d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013,
        0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d, 0x017e, 0x0178,
    ];
    match value {
        0x80..=0x9f => char::from_u32(CP1252[(value - 0x80) as usize]).unwrap_or('\u{fffd}'),
        0 | 0xd800..=0xdfff => '\u{fffd}',
        v => char::from_u32(v).unwrap_or('\u{fffd}'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_matches_gpt2() {
        let (map, order) = byte_symbols();
        assert_eq!(map[b'a' as usize], 'a');
        assert_eq!(map[0], '\u{100}');
        assert_eq!(map[b' ' as usize], '\u{120}');
        assert_eq!(map[0xad], '\u{143}');
        assert_eq!(order.len(), 256);
        assert_eq!(order[188], 0);
    }

    #[test]
    fn cleaning_follows_the_reference() {
        assert_eq!(clean("  Hello\t\n  WORLD  "), "hello world");
        assert_eq!(clean("&amp;amp;amp;"), "&");
        assert_eq!(clean("a < b &amp;amp;amp; c"), "a < b &amp; c");
        assert_eq!(clean("&#233;t&eacute; &#x41;"), "été a");
        assert_eq!(clean("ﬁne ‘q’ Ｆｕｌｌ"), "fine 'q' full");
        assert_eq!(clean("x\u{1b}[31mred\u{1b}[0m\u{7}z"), "xredz");
        assert_eq!(clean("cafe\u{301}"), "caf\u{e9}");
    }

    #[test]
    fn pieces_split_digits_and_keep_apostrophes() {
        // Ids from open_clip's `SimpleTokenizer` on a merges file with a header and no merges.
        let tok = ClipTokenizer::from_merges_text("header").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            tok.encode("It's 2023"),
            [72, 339, 6, 338, 273, 271, 273, 274]
        );
        assert_eq!((tok.start_id(), tok.end_id()), (512, 513));
        // The reference's quirk: a trailing newline is one more (empty) vocabulary entry.
        let tok = ClipTokenizer::from_merges_text("header\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((tok.start_id(), tok.end_id()), (513, 514));
    }

    #[test]
    fn too_long_is_an_error_unless_truncated() {
        let tok = ClipTokenizer::from_merges_text("header\n").unwrap_or_else(|e| panic!("{e}"));
        let long = "a ".repeat(100);
        assert!(matches!(
            tok.tokenize(&[&long], false),
            Err(Error::TextTooLong { .. })
        ));
        let ids = tok.tokenize(&[&long], true).unwrap_or_default();
        assert_eq!(ids[0].len(), 77);
        assert_eq!(ids[0][76], tok.end_id());
    }
}
