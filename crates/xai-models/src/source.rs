//! Finding weights: an explicit path, then an environment variable, then the local Hugging
//! Face cache, then (with the `hub` feature) a pinned download.

use std::path::{Path, PathBuf};

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
    match std::env::var_os(&var) {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_file() {
                return Ok(p);
            }
            looked.push(format!("${var}={} (not a file)", p.display()));
        }
        None => looked.push(format!("${var} (unset)")),
    }
    match std::env::var_os(WEIGHTS_DIR_VAR) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            for ext in ["safetensors", "pth", "pth.tar", "pt"] {
                let p = dir.join(format!("{arch}.{ext}"));
                if p.is_file() {
                    return Ok(p);
                }
            }
            looked.push(format!(
                "{}/{arch}.{{safetensors,pth,pth.tar,pt}}",
                dir.display()
            ));
        }
        None => looked.push(format!("${WEIGHTS_DIR_VAR} (unset)")),
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
}
