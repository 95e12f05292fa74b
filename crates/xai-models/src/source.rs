//! Finding weights: an explicit path, then an environment variable, then the local Hugging
//! Face cache, then (with the `hub` feature) a pinned download. CLIP's weights
//! ([`resolve_clip_weights`]) are also looked for in OpenAI's `clip.load` cache.

use std::path::{Path, PathBuf};

use crate::clip::ClipArch;
use crate::{Error, Result};

/// A standard set of weights on the Hugging Face hub, pinned to a repository, revision and file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubWeights {
    /// Architecture name (`resnet50`).
    pub arch: &'static str,
    /// Repository id (`timm/resnet50.tv_in1k`).
    pub repo: &'static str,
    /// Revision: a branch, tag or commit.
    pub revision: &'static str,
    /// File inside the repository.
    pub file: &'static str,
}

/// torchvision's ImageNet weights (IMAGENET1K_V1) as published by timm, whose ResNet keys are
/// torchvision's.
pub const HUB_WEIGHTS: [HubWeights; 5] = [
    hub("resnet18", "timm/resnet18.tv_in1k"),
    hub("resnet34", "timm/resnet34.tv_in1k"),
    hub("resnet50", "timm/resnet50.tv_in1k"),
    hub("resnet101", "timm/resnet101.tv_in1k"),
    hub("resnet152", "timm/resnet152.tv_in1k"),
];

const fn hub(arch: &'static str, repo: &'static str) -> HubWeights {
    HubWeights {
        arch,
        repo,
        revision: "main",
        file: "model.safetensors",
    }
}

/// The environment variable that may name the weights file of `arch`: `XAI_WEIGHTS_RESNET50`.
pub fn env_var_for(arch: &str) -> String {
    format!(
        "XAI_WEIGHTS_{}",
        arch.to_ascii_uppercase().replace(['-', '.', '/'], "_")
    )
}

/// The environment variable naming a folder of `<arch>.safetensors` / `<arch>.pth` files.
pub const WEIGHTS_DIR_VAR: &str = "XAI_WEIGHTS_DIR";

/// The root of the local Hugging Face hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, or
/// `~/.cache/huggingface/hub`).
pub fn hf_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".cache/huggingface/hub"))
}

/// The path of `file` from `repo` at `revision` in the local hf cache, if it is there.
pub fn find_in_hf_cache(cache: &Path, repo: &str, revision: &str, file: &str) -> Option<PathBuf> {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    let path = repo_dir.join("snapshots").join(commit).join(file);
    path.is_file().then_some(path)
}

/// Finds the weights of `arch`: `explicit` if given, then `$XAI_WEIGHTS_<ARCH>`, then
/// `$XAI_WEIGHTS_DIR/<arch>.{safetensors,pth,pth.tar}`, then the local hf cache, then (with
/// the `hub` feature) a download of the pinned file. The error says where it looked.
pub fn resolve_weights(arch: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(Error::io(
            p,
            std::io::Error::new(std::io::ErrorKind::NotFound, "weights file not found"),
        ));
    }
    let mut looked = Vec::new();
    let var = env_var_for(arch);
    if let Some(p) = find_local(&var, &[arch.to_string()], &mut looked) {
        return Ok(p);
    }
    let pinned = HUB_WEIGHTS.iter().find(|h| h.arch == arch);
    if let (Some(h), Some(cache)) = (pinned, hf_cache_dir()) {
        if let Some(p) = find_in_hf_cache(&cache, h.repo, h.revision, h.file) {
            return Ok(p);
        }
        looked.push(format!(
            "hf cache {} ({}@{})",
            cache.display(),
            h.repo,
            h.revision
        ));
    }
    #[cfg(feature = "hub")]
    if let Some(h) = pinned {
        return download(h);
    }
    let hint = match pinned {
        Some(h) if cfg!(feature = "hub") => format!("download {} from {}", h.file, h.repo),
        Some(h) => format!(
            "pass --weights FILE, set ${var}, or build with `--features hub` to download {} from {}",
            h.file, h.repo
        ),
        None => format!("pass --weights FILE or set ${var}"),
    };
    Err(Error::WeightsNotFound {
        arch: arch.to_string(),
        looked,
        hint,
    })
}

/// `$<var>` if it names a file, then `$XAI_WEIGHTS_DIR/<stem>.{safetensors,pth,pth.tar,pt}`
/// for each stem; each place that did not hold the file is added to `looked`.
fn find_local(var: &str, stems: &[String], looked: &mut Vec<String>) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_file() {
                return Some(p);
            }
            looked.push(format!("${var}={} (not a file)", p.display()));
        }
        None => looked.push(format!("${var} (unset)")),
    }
    match std::env::var_os(WEIGHTS_DIR_VAR) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            for stem in stems {
                for ext in ["safetensors", "pth", "pth.tar", "pt"] {
                    let p = dir.join(format!("{stem}.{ext}"));
                    if p.is_file() {
                        return Some(p);
                    }
                }
                looked.push(format!(
                    "{}/{stem}.{{safetensors,pth,pth.tar,pt}}",
                    dir.display()
                ));
            }
        }
        None => looked.push(format!("${WEIGHTS_DIR_VAR} (unset)")),
    }
    None
}

/// The folder where OpenAI's `clip.load` keeps its downloads: `~/.cache/clip`.
pub fn openai_clip_cache_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".cache/clip"))
}

/// The name OpenAI's `clip.load` gives the downloaded file of `arch` (`RN50.pt`,
/// `ViT-B-32.pt`, `ViT-B-16.pt`): a TorchScript archive that [`crate::WeightsFile`] reads.
pub fn openai_clip_file(arch: ClipArch) -> &'static str {
    match arch {
        ClipArch::Rn50 => "RN50.pt",
        ClipArch::VitB32 => "ViT-B-32.pt",
        ClipArch::VitB16 => "ViT-B-16.pt",
    }
}

/// The Hugging Face repository of OpenAI's `CLIPModel` for `arch`, where there is one
/// (`openai/clip-vit-base-patch32`, `…patch16`; OpenAI published no RN50 there).
pub fn hf_clip_repo(arch: ClipArch) -> Option<&'static str> {
    match arch {
        ClipArch::Rn50 => None,
        ClipArch::VitB32 => Some("openai/clip-vit-base-patch32"),
        ClipArch::VitB16 => Some("openai/clip-vit-base-patch16"),
    }
}

/// The key of `arch` in environment variables and file stems: `clip-rn50`, `clip-vit-b-32`.
fn clip_key(arch: ClipArch) -> String {
    format!(
        "clip-{}",
        arch.name().to_ascii_lowercase().replace('/', "-")
    )
}

/// Finds CLIP's weights for `arch`: `explicit` if given, then `$XAI_WEIGHTS_CLIP_RN50` (or
/// `…_CLIP_VIT_B_32`, `…_CLIP_VIT_B_16`), then `$XAI_WEIGHTS_DIR/clip-rn50.*` or
/// `$XAI_WEIGHTS_DIR/RN50.*`, then OpenAI's cache (`~/.cache/clip/RN50.pt`, as `clip.load`
/// leaves it), then, for the ViT models, the local Hugging Face cache of
/// `openai/clip-vit-base-patch32` / `…patch16` (`model.safetensors`, else
/// `pytorch_model.bin`). Nothing is downloaded. The error says where it looked.
///
/// ```
/// use xai_models::clip::ClipArch;
/// use xai_models::source::resolve_clip_weights;
/// let err = resolve_clip_weights(ClipArch::Rn50, Some("/nonexistent/RN50.pt".as_ref()));
/// assert!(err.unwrap_err().to_string().contains("/nonexistent/RN50.pt"));
/// ```
pub fn resolve_clip_weights(arch: ClipArch, explicit: Option<&Path>) -> Result<PathBuf> {
    resolve_clip_weights_in(
        arch,
        explicit,
        openai_clip_cache_dir().as_deref(),
        hf_cache_dir().as_deref(),
    )
}

/// [`resolve_clip_weights`] with the two caches given (tests point them at temporary folders).
fn resolve_clip_weights_in(
    arch: ClipArch,
    explicit: Option<&Path>,
    openai_cache: Option<&Path>,
    hf_cache: Option<&Path>,
) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(Error::io(
            p,
            std::io::Error::new(std::io::ErrorKind::NotFound, "CLIP weights file not found"),
        ));
    }
    let key = clip_key(arch);
    let var = env_var_for(&key);
    let openai = openai_clip_file(arch);
    let openai_stem = openai.trim_end_matches(".pt").to_string();
    let mut looked = Vec::new();
    if let Some(p) = find_local(&var, &[key.clone(), openai_stem], &mut looked) {
        return Ok(p);
    }
    if let Some(dir) = openai_cache {
        let p = dir.join(openai);
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p.display().to_string());
    }
    if let (Some(repo), Some(cache)) = (hf_clip_repo(arch), hf_cache) {
        for file in ["model.safetensors", "pytorch_model.bin"] {
            if let Some(p) = find_in_hf_cache(cache, repo, "main", file) {
                return Ok(p);
            }
        }
        looked.push(format!("hf cache {} ({repo}@main)", cache.display()));
    }
    Err(Error::WeightsNotFound {
        arch: arch.name().to_string(),
        looked,
        hint: format!(
            "pass --clip-weights FILE (an OpenAI/open_clip state dict, OpenAI's TorchScript {openai}, or a Hugging Face CLIPModel), set ${var}, or run `clip.load(\"{}\")` once in Python, which leaves {openai} in ~/.cache/clip; xai does not download CLIP weights",
            arch.name()
        ),
    })
}

#[cfg(feature = "hub")]
fn download(h: &HubWeights) -> Result<PathBuf> {
    let api = hf_hub::api::sync::Api::new().map_err(|e| Error::WeightsFormat {
        path: PathBuf::from(h.repo),
        reason: format!("cannot start the hub client: {e}"),
    })?;
    let repo = api.repo(hf_hub::Repo::with_revision(
        h.repo.to_string(),
        hf_hub::RepoType::Model,
        h.revision.to_string(),
    ));
    repo.get(h.file).map_err(|e| Error::WeightsNotFound {
        arch: h.arch.to_string(),
        looked: vec![format!("{}@{} on the hub", h.repo, h.revision)],
        hint: format!("the download failed ({e}); pass --weights FILE to use a local file"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_in_a_hf_cache_layout() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("models--timm--resnet18.tv_in1k");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/abc123")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc123\n").unwrap();
        std::fs::write(repo.join("snapshots/abc123/model.safetensors"), b"x").unwrap();
        let found = find_in_hf_cache(
            dir.path(),
            "timm/resnet18.tv_in1k",
            "main",
            "model.safetensors",
        );
        assert_eq!(found, Some(repo.join("snapshots/abc123/model.safetensors")));
        assert_eq!(
            find_in_hf_cache(
                dir.path(),
                "timm/resnet50.tv_in1k",
                "main",
                "model.safetensors"
            ),
            None
        );
    }

    #[test]
    fn env_var_names_are_upper_case() {
        assert_eq!(env_var_for("resnet50"), "XAI_WEIGHTS_RESNET50");
    }
    #[test]
    fn clip_weights_are_found_in_the_openai_and_hf_caches() {
        let dir = tempfile::tempdir().unwrap();
        let openai = dir.path().join("clip");
        std::fs::create_dir_all(&openai).unwrap();
        std::fs::write(openai.join("RN50.pt"), b"x").unwrap();
        let hf = dir.path().join("hub");
        let repo = hf.join("models--openai--clip-vit-base-patch16");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/c0ffee")).unwrap();
        std::fs::write(repo.join("refs/main"), "c0ffee").unwrap();
        std::fs::write(repo.join("snapshots/c0ffee/pytorch_model.bin"), b"x").unwrap();
        let found = |arch| resolve_clip_weights_in(arch, None, Some(&openai), Some(&hf));
        assert_eq!(found(ClipArch::Rn50).unwrap(), openai.join("RN50.pt"));
        assert_eq!(
            found(ClipArch::VitB16).unwrap(),
            repo.join("snapshots/c0ffee/pytorch_model.bin")
        );
        let err = found(ClipArch::VitB32).unwrap_err().to_string();
        for part in [
            "ViT-B/32",
            "ViT-B-32.pt",
            "openai/clip-vit-base-patch32",
            "XAI_WEIGHTS_CLIP_VIT_B_32",
            "--clip-weights",
        ] {
            assert!(err.contains(part), "{part} missing from: {err}");
        }
    }

    #[test]
    fn an_explicit_clip_file_that_is_missing_is_named() {
        let err =
            resolve_clip_weights_in(ClipArch::Rn50, Some(Path::new("/no/RN50.pt")), None, None)
                .unwrap_err()
                .to_string();
        assert!(err.contains("/no/RN50.pt"), "{err}");
    }
}
