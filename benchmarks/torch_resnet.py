"""torchvision's ResNet-18 in plain torch.nn (torchvision is not a dependency): the same
module layout and state-dict keys, for the PyTorch speed reference
(benchmarks/crossmodal_torch.py) and the weight-conversion test. Needs torch."""

import torch
from torch import nn


class BasicBlock(nn.Module):
  """torchvision's BasicBlock: two 3x3 conv-BN layers, a 1x1 conv-BN shortcut where the
  shape changes, relu."""

  def __init__(self, cin, cout, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.downsample = None
    if stride != 1 or cin != cout:
      self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

  def forward(self, x):
    y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18Trunk(nn.Module):
  """torchvision's resnet18 without its fc: (N, 3, H, W) -> (N, 512) average-pooled."""

  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    widths = [64, 64, 128, 256, 512]
    for stage in range(1, 5):
      stride = 1 if stage == 1 else 2
      setattr(self, f'layer{stage}', nn.Sequential(
          BasicBlock(widths[stage - 1], widths[stage], stride),
          BasicBlock(widths[stage], widths[stage], 1)))
    for m in self.modules():  # torchvision's initialisation
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

  def forward(self, x):
    x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
    for stage in range(1, 5):
      x = getattr(self, f'layer{stage}')(x)
    return x.mean(dim=(2, 3))


class ResNet18(ResNet18Trunk):
  """torchvision's resnet18 with its 1000-class fc: (N, 3, H, W) -> logits (N, 1000)."""

  def __init__(self):
    super().__init__()
    self.fc = nn.Linear(512, 1000)

  def forward(self, x):
    return self.fc(super().forward(x))
