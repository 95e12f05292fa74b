"""Checks that `xai lime-search` exports parameters Python can read with `pickle.load`.

Runs the search on two test-world scenes with a tiny search space, then loads
`params.pkl` with the standard library and compares it with `params.json`.

    cargo build --release
    tools/parity/.venv/bin/python tools/parity/test_lime_pickle.py      # or: pytest tools/parity
"""

import json
import os
import pathlib
import pickle
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
XAI = os.environ.get("XAI_BIN", str(ROOT / "target" / "release" / "xai"))

SPACE = {
    "segmentations": [{"method": "slic", "n_segments": 30}, {"method": "quickshift"}],
    "num_samples": [60],
    "kernel_widths": [0.25],
    "hide_colors": ["mean", "0,0,0"],
    "num_features": [3],
}


def test_pickle_matches_json():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "space.json").write_text(json.dumps(SPACE))
        out = tmp / "lime_parameters.json"
        subprocess.run(
            [XAI, "lime-search", "--scenes", "2", "--strategy", "grid", "--space",
             str(tmp / "space.json"), "--out", str(out), "--no-progress"],
            check=True, cwd=ROOT,
        )
        with open(tmp / "lime_parameters.pkl", "rb") as f:
            params = pickle.load(f)
        expected = json.loads(out.read_text())
    assert isinstance(params, dict), type(params)
    assert params == expected, (params, expected)
    for key in ["segmentation_fn", "segmentation_params", "num_samples", "kernel_width",
                "hide_color", "num_features", "positive_only", "seed", "mean_iou"]:
        assert key in params, key
    assert params["segmentation_fn"] in ("slic", "quickshift")
    assert isinstance(params["segmentation_params"], dict)
    assert params["hide_color"] is None or params["hide_color"] == [0, 0, 0]
    assert 0.0 <= params["mean_iou"] <= 1.0
    print("pickle OK:", params)


if __name__ == "__main__":
    test_pickle_matches_json()
