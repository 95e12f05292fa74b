//! CLIP: the BPE tokenizer so far ([`ClipTokenizer`]); the image and text towers are to come.

mod tokenizer;

pub use tokenizer::{clean, ClipTokenizer, CONTEXT_LENGTH, NAMED_ENTITIES};
