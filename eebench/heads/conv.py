"""``conv``: Table 3's "Conv" exit (the port's ``conv_normal``): patch tokens → standard 3×3 conv D→D → GELU → BN →
LGViT's fused classifier (mean-pool + CLS). 9D² + D + 2D + (D+1)C parameters (5,387,620 for ViT-B at 100 classes)."""
from torch import nn

from .base import (ExitHead, FusedClassifier, HeadOutput, from_grid, init_like_hf, patch_tokens, register_head,
                   require_grid, to_grid)
from .lph import conv_gelu_bn


@register_head("conv")
class ConvHead(ExitHead):
    distill_group = "local"

    def __init__(self, layout, num_classes, exit_layer, kernel: int = 3):
        super().__init__(layout, num_classes, exit_layer)
        self.grid = require_grid(layout, "conv")
        self.body = nn.Sequential(*conv_gelu_bn(layout.width, layout.width, kernel))
        self.classifier = FusedClassifier(layout, num_classes)
        init_like_hf(self)

    def forward(self, hidden, mask=None):
        feature = from_grid(self.body(to_grid(patch_tokens(hidden, self.layout), self.grid)))
        return HeadOutput(self.classifier(feature, hidden), feature)
