"""``lph``: LGViT's local perception head, exactly as the official code builds it (spec methods §1.3).

PW-1 (1×1 conv, GELU, BN) → [PDConv: k×k depth-wise conv, GELU, BN, only when ``kernel`` > 0] → PW-2 (1×1 conv, BN)
→ + input tokens (a residual the paper does not mention). ``expansion`` is the PW-1 width ratio: 1 in code, the
paper's "expand dimensions" suggests more (switch ``lph_expansion``).
"""
from torch import nn

from .base import (ExitHead, FusedClassifier, HeadOutput, from_grid, init_like_hf, patch_tokens, register_head,
                   require_grid, to_grid)


def conv_gelu_bn(c_in: int, c_out: int, kernel: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups), nn.GELU(), nn.BatchNorm2d(c_out)]


@register_head("lph")
class LocalPerceptionHead(ExitHead):
    distill_group = "local"

    def __init__(self, layout, num_classes, exit_layer, kernel: int = 3, expansion: float = 1.0):
        super().__init__(layout, num_classes, exit_layer)
        self.grid = require_grid(layout, "lph")
        d = layout.width
        hidden = int(round(d * expansion))
        layers = conv_gelu_bn(d, hidden, 1)
        if kernel > 0:
            layers += conv_gelu_bn(hidden, hidden, kernel, groups=hidden)
        layers += [nn.Conv2d(hidden, d, 1), nn.BatchNorm2d(d)]
        self.body = nn.Sequential(*layers)
        self.classifier = FusedClassifier(layout, num_classes)
        init_like_hf(self)

    def forward(self, hidden, mask=None):
        tokens = patch_tokens(hidden, self.layout)
        feature = from_grid(self.body(to_grid(tokens, self.grid))) + tokens
        return HeadOutput(self.classifier(feature, hidden), feature)
