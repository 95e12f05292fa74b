//! The methods: one small type each.

mod ablation;
mod gradient;
mod score;

pub use ablation::{AblationCam, AblationWeights};
pub use gradient::{
    EigenCam, EigenGradCam, GradCam, GradCamPlusPlus, HiResCam, LayerCam, XGradCam,
};
pub use score::ScoreCam;
