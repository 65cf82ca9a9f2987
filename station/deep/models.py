"""The two deep baselines of the paper's Table 12, as small PyTorch modules.

Both are deliberately shallow: a micro-expression database has a few hundred samples at
most, and LOSO trains one network per participant, so capacity must stay tiny.
"""

from __future__ import annotations

import torch
from torch import nn


class STSTNet(nn.Module):
    """Shallow Triple Stream Three-dimensional CNN (Liong et al., FG 2019).

    Three parallel 3x3 convolution streams with 3, 5 and 8 filters read the same
    (3, 28, 28) motion image (u, v, optical strain); each stream is
    conv -> ReLU -> batch-norm -> 3x3/3 max-pool -> dropout, as in the authors' code.  The
    16 maps are concatenated (the "3D fusion" of the streams), 2x2 average-pooled to 5x5
    and classified by one fully connected layer.
    """

    def __init__(self, n_classes: int = 3, in_channels: int = 3, size: int = 28, dropout: float = 0.5):
        super().__init__()
        self.streams = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, width, kernel_size=3, padding=2), nn.ReLU(),
                          nn.BatchNorm2d(width), nn.MaxPool2d(kernel_size=3, stride=3, padding=1),
                          nn.Dropout(dropout))
            for width in (3, 5, 8))
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        side = ((size + 2) + 2 - 3) // 3 + 1  # conv with padding 2, then max-pool 3/3 pad 1
        side //= 2  # average pool
        self.classifier = nn.Linear(16 * side * side, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = torch.cat([stream(x) for stream in self.streams], dim=1)
        return self.classifier(torch.flatten(self.pool(fused), 1))


class SpatioTemporalCNN3D(nn.Module):
    """A small spatio-temporal 3D CNN on the aligned gray clip (the paper's "3DSTCNN").

    In the spirit of MicroExpSTCNN (Reddy et al. 2019): 3D convolutions see space and time
    together, so subtle motion is learned from the frames themselves, without optical
    flow.  Three conv3d -> batch-norm -> ReLU -> pool blocks (8, 16, 32 filters).  The first
    block keeps the time axis (micro-expressions are short) but strides 2 in space before
    pooling: its 3x3 kernels still see every pixel, and the following blocks run on 16x16
    maps instead of 32x32, which makes a CPU fold ~6x faster.  Global average pooling and a
    linear classifier keep the weight count under 20 k.
    """

    def __init__(self, n_classes: int = 3, widths: tuple[int, ...] = (8, 16, 32), dropout: float = 0.5):
        super().__init__()
        blocks: list[nn.Module] = []
        in_channels = 1
        for i, width in enumerate(widths):
            stride, pool = ((1, 2, 2), (1, 2, 2)) if i == 0 else (1, (2, 2, 2))
            blocks += [nn.Conv3d(in_channels, width, kernel_size=3, stride=stride, padding=1, bias=False),
                       nn.BatchNorm3d(width), nn.ReLU(), nn.MaxPool3d(pool, ceil_mode=True)]
            in_channels = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(in_channels, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:  # (N, T, H, W) gray clips -> one input channel
            x = x.unsqueeze(1)
        return self.head(self.features(x))
