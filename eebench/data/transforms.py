"""The image transforms of the official LGViT code (spec methods §2.5), sized and normalised for a backbone.

train: RandomResizedCrop(size) (torchvision defaults: scale (0.08, 1), ratio (3/4, 4/3)) → RandomHorizontalFlip →
ToTensor → Normalize; eval: Resize(size) (shorter side) → CenterCrop(size) → ToTensor → Normalize. The official code
forces size 224 whatever the image, so CIFAR's 32×32 images are up-sampled; here ``size`` is the backbone's input size.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch


def _tv():
    try:
        from torchvision import transforms
    except ImportError as err:  # the digits path needs no torchvision
        from ..errors import fail

        raise fail(f"image datasets need torchvision ({err})", "pip install 'eebench[vision]'") from err
    return transforms


def train_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> Callable[..., torch.Tensor]:
    T = _tv()
    return T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(mean=list(mean), std=list(std))])


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> Callable[..., torch.Tensor]:
    T = _tv()
    return T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean=list(mean), std=list(std))])
