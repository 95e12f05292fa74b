//! Running the `xai` binary from the integration tests: shared by `tests/cli*.rs`.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn xai(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xai"));
    cmd.args(args).current_dir(root());
    // Never let the developer's own weights or caches leak into a test.
    for var in [
        "XAI_WEIGHTS_DIR",
        "XAI_WEIGHTS_RESNET18",
        "XAI_WEIGHTS_RESNET50",
        "HF_HOME",
        "HF_HUB_CACHE",
        "XAI_CLIP_VOCAB",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub(crate) fn ok(args: &[&str]) -> String {
    let out = xai(args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xai {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn fails(args: &[&str], env: &[(&str, &Path)], expected: &[&str]) {
    let out = xai(args, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "xai {args:?} should fail cleanly: {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "xai {args:?} panicked: {stderr}"
    );
    for e in expected {
        assert!(
            stderr.contains(e),
            "xai {args:?}: expected `{e}` in: {stderr}"
        );
    }
}

/// As [`fails`], for errors that may come from argument parsing too (clap exits with 2):
/// any failing exit status, no panic, and every `expected` text in stderr.
pub(crate) fn fails_cleanly(args: &[&str], expected: &[&str]) {
    let out = xai(args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "xai {args:?} should fail: {stderr}");
    assert!(
        !stderr.contains("panicked"),
        "xai {args:?} panicked: {stderr}"
    );
    for e in expected {
        assert!(
            stderr.contains(e),
            "xai {args:?}: expected `{e}` in: {stderr}"
        );
    }
}
