"""Makes the metric parity fixtures under testdata/parity/metrics/ that
crates/xai-metrics/tests/parity.rs reads.

    bash tools/parity/setup.sh            # once: a venv with torch, torchvision, grad-cam
    tools/parity/.venv/bin/python tools/parity/make_metric_fixtures.py

pytorch-grad-cam's metrics (PyPI `grad-cam`, pytorch_grad_cam.metrics) run on the seeded
width-4 ResNets of make_fixtures.py (testdata/parity/resnet{18,50}_tiny.safetensors, in
torchvision's ResNet code) and the two 3×64×64 inputs of testdata/parity/input_64.npy, on the
CPU in float32. The map is the reference's own Grad-CAM on layer4 (targets=None), stored so
both sides score the very same map. Targets: ClassifierOutputSoftmaxTarget(top-1 class).
ROAD runs with NoisyLinearImputer(noise=0) (docs algorithms/cam.md §8). Per model:

- <model>.map.npy: float32 (2, 64, 64), the Grad-CAM map fed to every metric.
- <model>.top1.npy: int64 (2,), the classes scored.
- <model>.cam_mult.npy: float32 (3, 2): CamMultImageConfidenceChange, DropInConfidence,
  IncreaseInConfidence.
- <model>.road.npy: float32 (2, 9, 2): ROADMostRelevantFirst(p) and
  ROADLeastRelevantFirst(p) (order, percentile 10…90, image), y' − y.
- <model>.road_combined.npy: float32 (2,): ROADCombined over 10…90.
- <model>.road_keep.npy: uint8, np.packbits of the keep masks (2 orders, 9 percentiles,
  2 images, 64, 64), big bit order.
- resnet18_tiny.road_morf50.npy: float32 (2, 3, 64, 64), the imputed inputs of MoRF at 50.
"""
import pathlib

import numpy as np
import torch
from safetensors.torch import load_file

from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.metrics.cam_mult_image import (
    CamMultImageConfidenceChange,
    DropInConfidence,
    IncreaseInConfidence,
)
from pytorch_grad_cam.metrics.perturbation_confidence import (
    AveragerAcrossThresholds,
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

from common import ARCHS, NarrowResNet, set_deterministic

ROOT = pathlib.Path(__file__).resolve().parents[2]
PARITY = ROOT / "testdata" / "parity"
OUT = PARITY / "metrics"
PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90]


def load_model(name, arch):
    block, layers = ARCHS[arch]
    sd = load_file(str(PARITY / f"{name}.safetensors"))
    model = NarrowResNet(block, layers, sd["conv1.weight"].shape[0], sd["fc.weight"].shape[0])
    model.load_state_dict(sd)
    return model.eval()


def road_metric(order, p):
    cls = RemoveMostRelevantFirst if order == "morf" else RemoveLeastRelevantFirst
    return PerturbationConfidenceMetric(cls(p, NoisyLinearImputer(noise=0)))


def keep_mask(order, p, cam):
    # The reference's own rule (RemoveMostRelevantFirst.__call__), to record its masks.
    m = torch.from_numpy(cam if order == "morf" else 1 - cam)
    t = np.percentile(m.numpy(), p)
    return (m < t).numpy()


def main():
    set_deterministic()
    OUT.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy(np.load(PARITY / "input_64.npy"))
    for name, arch in [("resnet18_tiny", "resnet18"), ("resnet50_tiny", "resnet50")]:
        model = load_model(name, arch)
        with torch.no_grad():
            top1 = model(x).argmax(1).numpy()
        cam = GradCAM(model=model, target_layers=[model.layer4])(input_tensor=x, targets=None)
        cam = np.float32(cam)
        targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in top1]
        np.save(OUT / f"{name}.map.npy", cam)
        np.save(OUT / f"{name}.top1.npy", top1.astype(np.int64))
        mult = [
            CamMultImageConfidenceChange()(x, cam, targets, model),
            DropInConfidence()(x, cam, targets, model),
            IncreaseInConfidence()(x, cam, targets, model),
        ]
        np.save(OUT / f"{name}.cam_mult.npy", np.float32(mult))
        road = np.zeros((2, len(PERCENTILES), 2), np.float32)
        keep = np.zeros((2, len(PERCENTILES), 2, 64, 64), bool)
        for o, order in enumerate(["morf", "lerf"]):
            for k, p in enumerate(PERCENTILES):
                road[o, k] = road_metric(order, p)(x, cam, targets, model)
                for b in range(2):
                    keep[o, k, b] = keep_mask(order, p, cam[b])
        np.save(OUT / f"{name}.road.npy", road)
        np.save(OUT / f"{name}.road_keep.npy", np.packbits(keep.reshape(-1)))
        morf = AveragerAcrossThresholds(lambda p: road_metric("morf", p), PERCENTILES)
        lerf = AveragerAcrossThresholds(lambda p: road_metric("lerf", p), PERCENTILES)
        combined = (lerf(x, cam, targets, model) - morf(x, cam, targets, model)) / 2
        np.save(OUT / f"{name}.road_combined.npy", np.float32(combined))
        if name == "resnet18_tiny":
            imputed = road_metric("morf", 50)(
                x, cam, targets, model, return_visualization=True
            )[1]
            np.save(OUT / f"{name}.road_morf50.npy", imputed.numpy().astype(np.float32))
        print(name, "top1", top1, "cam_mult", np.float32(mult).tolist(), "combined", combined)


if __name__ == "__main__":
    main()
