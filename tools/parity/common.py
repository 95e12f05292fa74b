"""Shared helpers for the parity scripts: seeded torchvision-structured ResNets."""
import numpy as np
import torch
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

ARCHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}


class NarrowResNet(ResNet):
    """torchvision's ResNet, blocks and names unchanged, with a stem width other than 64.

    Only the widths differ from torchvision: `_make_layer` and the blocks are torchvision's
    own, so the parameter names and the forward pass are exactly those of `resnet18` etc.
    """

    def __init__(self, block, layers, width=64, num_classes=1000):
        torch.nn.Module.__init__(self)
        norm = torch.nn.BatchNorm2d
        self._norm_layer = norm
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = torch.nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm(width)
        self.relu = torch.nn.ReLU(inplace=True)
        self.maxpool = torch.nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.fc = torch.nn.Linear(width * 8 * block.expansion, num_classes)


def seeded_resnet(arch, seed, width=64, num_classes=1000):
    """A ResNet with torchvision's default init, then random batch-norm statistics and affine
    parameters (the defaults 1/0 would make batch-norm an identity and hide folding errors)."""
    torch.manual_seed(seed)
    block, layers = ARCHS[arch]
    if width == 64:
        import torchvision

        model = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    else:
        model = NarrowResNet(block, layers, width, num_classes)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.2)
                m.running_mean.copy_((torch.rand(n, generator=g) - 0.5) * 0.2)
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        model.fc.bias.copy_((torch.rand(num_classes, generator=g) - 0.5) * 0.2)
    return model.eval()


def layer_outputs(model, x, names):
    """Outputs of named submodules (torchvision names: layer4, layer4.1, avgpool, fc)."""
    out = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o.detach()))
        for n in names
    ]
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    out["logits"] = logits
    return out


def state_dict_np(model):
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def set_deterministic():
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_num_threads(2)
    np.random.seed(0)
