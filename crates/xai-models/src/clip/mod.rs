//! CLIP: the BPE tokenizer ([`ClipTokenizer`]); the image and text towers are being added
//! ([`ModifiedResNet`] for RN50).

mod modified_resnet;
mod tokenizer;

pub use modified_resnet::ModifiedResNet;
pub use tokenizer::{clean, ClipTokenizer, CONTEXT_LENGTH, NAMED_ENTITIES};
