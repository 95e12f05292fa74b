//! CLIP: the BPE tokenizer ([`ClipTokenizer`]), the image towers ([`VisionTransformer`] for
//! ViT-B/32 and ViT-B/16, [`ModifiedResNet`] for RN50), the text tower ([`TextTransformer`]),
//! the [`Clip`] façade that loads OpenAI, open_clip and Hugging Face checkpoints, and CLIP's
//! image transform ([`preprocess()`]).

mod hf;
mod model;
mod modified_resnet;
mod preprocess;
mod text;
mod tokenizer;
mod transformer;
mod vit;

pub use hf::{hf_to_openai, is_hf_layout, HfClipConfig};
pub use model::{Clip, ClipArch, ClipLayout, ClipOptions, ImageTower};
pub use modified_resnet::ModifiedResNet;
pub use preprocess::{preprocess, resize_and_crop, CLIP_MEAN, CLIP_STD};
pub use text::TextTransformer;
pub use tokenizer::{clean, ClipTokenizer, CONTEXT_LENGTH, NAMED_ENTITIES};
pub use transformer::{Activation, Transformer};
pub use vit::VisionTransformer;
