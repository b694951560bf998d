"""PyTorch definitions of the networks that the ctseg examples implement.

Each network here is the numerical yardstick for the C++ example of the same
name: the example loads a `state_dict` of these modules (saved as safetensors,
with PyTorch's own key names) and must compute the same logits in eval mode.
The module attribute names, container indices and layer order therefore fix
the weight file layout and must not change.

    /usr/bin/python3 reference_nets.py      # lists every case with its shapes
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def crop_like(x, ref):
    """Centre-crop the spatial dims of `x` to those of `ref`.

    When the surplus is odd the extra element is dropped at the high end
    (start offset = surplus // 2)."""
    index = [slice(None), slice(None)]
    for size, target in zip(x.shape[2:], ref.shape[2:]):
        start = (size - target) // 2
        index.append(slice(start, start + target))
    return x[tuple(index)]


# ---------------------------------------------------------------------------
# FCN-8s: VGG-like stages, convolutionalised fully connected layers, three
# score maps fused by transposed convolutions (x2, x2, x8).
# ---------------------------------------------------------------------------
class FCN8s(nn.Module):
    def __init__(self, in_ch=3, classes=21, widths=(64, 128, 256, 512, 512),
                 convs=(2, 2, 3, 3, 3), fc=4096, fc6_kernel=7):
        super().__init__()
        stages = []
        channels = in_ch
        for width, count in zip(widths, convs):
            seq = []
            for _ in range(count):
                seq.append(nn.Conv2d(channels, width, kernel_size=3, padding=1))
                seq.append(nn.ReLU(inplace=True))
                channels = width
            seq.append(nn.MaxPool2d(kernel_size=2))
            stages.append(nn.Sequential(*seq))
        self.stages = nn.ModuleList(stages)
        self.fc6 = nn.Conv2d(channels, fc, fc6_kernel, padding=fc6_kernel // 2)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.score_fr = nn.Conv2d(fc, classes, 1)
        self.score_pool4 = nn.Conv2d(widths[3], classes, 1)
        self.score_pool3 = nn.Conv2d(widths[2], classes, 1)
        self.upscore2 = nn.ConvTranspose2d(classes, classes, 4, stride=2, padding=1, bias=False)
        self.upscore_pool4 = nn.ConvTranspose2d(classes, classes, 4, stride=2, padding=1, bias=False)
        self.upscore8 = nn.ConvTranspose2d(classes, classes, 16, stride=8, padding=4, bias=False)

    def forward(self, x):
        pooled = []
        for stage in self.stages:
            x = stage(x)
            pooled.append(x)
        h = F.relu(self.fc6(x))
        h = F.relu(self.fc7(h))
        h = self.upscore2(self.score_fr(h)) + self.score_pool4(pooled[3])
        h = self.upscore_pool4(h) + self.score_pool3(pooled[2])
        return self.upscore8(h)


# ---------------------------------------------------------------------------
# 2D U-Net.
# ---------------------------------------------------------------------------
class ConvPair(nn.Module):
    """conv -> (norm) -> ReLU, twice. Without a norm the norm slots are
    parameter-free identities (they keep the attribute names stable)."""

    def __init__(self, cin, cout, pad):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=pad)
        self.norm1 = nn.Identity()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=pad)
        self.norm2 = nn.Identity()

    def forward(self, x):
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)))


class UNet2D(nn.Module):
    """Valid 3x3 convolutions unless `padded`; channel width doubles at every
    level; 2x2 stride-2 transposed convs halve it again; skips are centre-cropped
    and placed before the upsampled map in the concatenation."""

    def __init__(self, in_ch=1, classes=2, width=64, depth=4, padded=False):
        super().__init__()
        pad = 1 if padded else 0
        level_widths = [width << level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        channels = in_ch
        for w in level_widths[:depth]:
            self.down.append(ConvPair(channels, w, pad))
            channels = w
        self.bottom = ConvPair(channels, level_widths[depth], pad)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in level_widths[depth - 1::-1]:
            self.up.append(nn.ConvTranspose2d(2 * w, w, 2, stride=2))
            self.dec.append(ConvPair(2 * w, w, pad))
        self.head = nn.Conv2d(level_widths[0], classes, 1)

    def forward(self, x):
        saved = []
        for block in self.down:
            x = block(x)
            saved.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            x = up(x)
            skip = saved[len(saved) - 1 - i]
            x = dec(torch.cat((crop_like(skip, x), x), 1))
        return self.head(x)


# ---------------------------------------------------------------------------
# 3D U-Net: each block is conv-BN-ReLU twice; the first conv of an analysis
# block produces half the channels of the second.
# ---------------------------------------------------------------------------
def _bn_block3d(cin, cmid, cout, pad):
    return nn.Sequential(
        nn.Conv3d(cin, cmid, 3, padding=pad),
        nn.BatchNorm3d(cmid),
        nn.ReLU(inplace=True),
        nn.Conv3d(cmid, cout, 3, padding=pad),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class UNet3D(nn.Module):
    def __init__(self, in_ch=3, classes=3, width=32, depth=3, padded=False):
        super().__init__()
        pad = 1 if padded else 0
        self.down = nn.ModuleList()
        channels = in_ch
        for level in range(depth):
            half = width * (1 << level)
            self.down.append(_bn_block3d(channels, half, 2 * half, pad))
            channels = 2 * half
        self.bottom = _bn_block3d(channels, channels, 2 * channels, pad)
        channels *= 2
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for level in range(depth - 1, -1, -1):
            skip_channels = 2 * width * (1 << level)
            self.up.append(nn.ConvTranspose3d(channels, channels, 2, stride=2))
            self.dec.append(_bn_block3d(channels + skip_channels, skip_channels, skip_channels, pad))
            channels = skip_channels
        self.head = nn.Conv3d(channels, classes, 1)

    def forward(self, x):
        saved = []
        for block in self.down:
            x = block(x)
            saved.append(x)
            x = F.max_pool3d(x, 2)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, saved[::-1]):
            x = up(x)
            x = dec(torch.cat((crop_like(skip, x), x), 1))
        return self.head(x)


# ---------------------------------------------------------------------------
# V-Net: residual stages of 5x5x5 convs with channel-wise PReLU.
# ---------------------------------------------------------------------------
class ResidualStage(nn.Module):
    """`n` (conv 5x5x5 pad 2, PReLU) pairs; the caller supplies the residual
    that is added to the result."""

    def __init__(self, cin, channels, n):
        super().__init__()
        self.convs = nn.ModuleList()
        self.acts = nn.ModuleList()
        for i in range(n):
            self.convs.append(nn.Conv3d(cin if i == 0 else channels, channels, 5, padding=2))
            self.acts.append(nn.PReLU(channels))

    def forward(self, x, residual):
        for conv, act in zip(self.convs, self.acts):
            x = act(conv(x))
        return x + residual


class VNet(nn.Module):
    """Encoder stages (residual; the first adds its single-channel input
    replicated over `width` channels), stride-2 2x2x2 down convolutions that
    double the channels, a residual bottom stage, stride-2 transposed convs,
    decoder stages on cat(skip, up) whose residual is cat(up, up), 1x1x1 head."""

    def __init__(self, in_ch=1, classes=2, width=16, convs=(1, 2, 3, 3), bottom=3, up_convs=(3, 3, 2, 1)):
        super().__init__()
        if in_ch != 1:
            raise ValueError("VNet: the first residual replicates a single input channel")
        self.width = width
        widths = [width << i for i in range(len(convs))]
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            self.enc.append(ResidualStage(in_ch if i == 0 else w, w, convs[i]))
            self.down.append(nn.Sequential(nn.Conv3d(w, 2 * w, 2, stride=2), nn.PReLU(2 * w)))
        channels = 2 * widths[-1]
        self.bottom = ResidualStage(channels, channels, bottom)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w, n in zip(widths[::-1], up_convs):
            self.up.append(nn.Sequential(nn.ConvTranspose3d(channels, w, 2, stride=2), nn.PReLU(w)))
            self.dec.append(ResidualStage(2 * w, 2 * w, n))
            channels = 2 * w
        self.head = nn.Conv3d(channels, classes, 1)

    def forward(self, x):
        saved = []
        for i in range(len(self.enc)):
            res = x.repeat(1, self.width, 1, 1, 1) if i == 0 else x
            x = self.enc[i](x, res)
            saved.append(x)
            x = self.down[i](x)
        x = self.bottom(x, x)
        for i in range(len(self.up)):
            x = self.up[i](x)
            skip = saved[-1 - i]
            x = self.dec[i](torch.cat((skip, x), 1), torch.cat((x, x), 1))
        return self.head(x)


# ---------------------------------------------------------------------------
# Dilated-convolution context network: a two-conv front end then the basic
# context module (dilations 1,1,2,4,8,16,1, ReLU after each) and a 1x1 conv.
# ---------------------------------------------------------------------------
CONTEXT_DILATIONS = (1, 1, 2, 4, 8, 16, 1)


class ContextNet(nn.Module):
    def __init__(self, in_ch=3, classes=21, front_width=64):
        super().__init__()
        self.front = nn.Sequential(
            nn.Conv2d(in_ch, front_width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(front_width, classes, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.context = nn.ModuleList(
            [nn.Conv2d(classes, classes, 3, padding=d, dilation=d) for d in CONTEXT_DILATIONS])
        self.final = nn.Conv2d(classes, classes, 1)

    def forward(self, x):
        x = self.front(x)
        for conv in self.context:
            x = F.relu(conv(x))
        return self.final(x)


# ---------------------------------------------------------------------------
# Cases: name -> variant -> (class, constructor kwargs, input shape N,C,...)
# "paper" = published topology and tile; "small" = test size; "bench" =
# performance yardstick.
# ---------------------------------------------------------------------------
CASES = {
    "fcn": {
        "paper": (FCN8s, {}, (1, 3, 512, 512)),
        "small": (FCN8s, dict(in_ch=3, classes=5, widths=(8, 8, 16, 16, 16), convs=(1, 1, 2, 2, 2),
                              fc=32, fc6_kernel=3), (2, 3, 64, 96)),
    },
    "unet2d": {
        "paper": (UNet2D, {}, (1, 1, 572, 572)),
        "small": (UNet2D, dict(width=4, depth=2), (2, 1, 92, 108)),
        "padded": (UNet2D, dict(width=8, depth=3, padded=True), (2, 1, 64, 80)),
        "bench": (UNet2D, dict(width=32, depth=4, padded=True), (1, 1, 256, 256)),
    },
    "unet3d": {
        "paper": (UNet3D, {}, (1, 3, 116, 132, 132)),
        "small": (UNet3D, dict(in_ch=1, classes=3, width=2, depth=2), (1, 1, 44, 52, 60)),
        "bench": (UNet3D, dict(in_ch=1, classes=3, width=16, depth=3, padded=True), (1, 1, 64, 64, 64)),
    },
    "vnet": {
        "paper": (VNet, {}, (1, 1, 64, 128, 128)),
        "small": (VNet, dict(width=2), (1, 1, 16, 32, 48)),
    },
    "context_net": {
        "paper": (ContextNet, {}, (1, 3, 512, 512)),
        "small": (ContextNet, dict(in_ch=1, classes=4, front_width=8), (2, 1, 70, 90)),
    },
}


def all_cases():
    """Every case as "name/variant", in table order."""
    return [f"{name}/{variant}" for name, variants in CASES.items() for variant in variants]


def split_case(case):
    name, sep, variant = case.partition("/")
    if not sep or name not in CASES or variant not in CASES[name]:
        raise KeyError(f"unknown case {case!r} (known: {', '.join(all_cases())})")
    return name, variant


def build(case):
    """Return (model, input_shape) for "name/variant"; the model is freshly
    initialised from torch's current RNG state."""
    name, variant = split_case(case)
    cls, kwargs, shape = CASES[name][variant]
    return cls(**kwargs), tuple(shape)


def input_shape(case):
    name, variant = split_case(case)
    return tuple(CASES[name][variant][2])


if __name__ == "__main__":
    torch.manual_seed(0)
    for case in all_cases():
        model, shape = build(case)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{case:20s} in {shape}  params {n_params}")
