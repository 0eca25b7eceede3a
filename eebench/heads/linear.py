"""``linear``: the LGViT port's ``linear`` highway, whose shape follows the backbone (spec methods §2.1):
ViT → the DeeBERT pooler + linear on token 0 (= ``mlp``); DeiT → LayerNorm, then CLS and DIST linears, averaged;
Swin (no CLS) → LayerNorm → mean over tokens → linear. ViT-EE's exit ends in it."""
from torch import nn

from .base import ExitHead, FusedClassifier, HeadOutput, init_like_hf, register_head
from .mlp import MLPHead


@register_head("linear")
class PortLinearHead(ExitHead):
    def __init__(self, layout, num_classes, exit_layer):
        super().__init__(layout, num_classes, exit_layer)
        if layout.classifier == "cls":
            self.impl = MLPHead(layout, num_classes, exit_layer)
        elif layout.classifier == "cls+dist":
            self.norm = nn.LayerNorm(layout.width, eps=1e-12)
            self.fc, self.fc_dist = nn.Linear(layout.width, num_classes), nn.Linear(layout.width, num_classes)
        else:
            self.impl = FusedClassifier(layout, num_classes)
        init_like_hf(self)

    def forward(self, hidden, mask=None):
        if isinstance(getattr(self, "impl", None), MLPHead):
            return self.impl(hidden, mask)
        if hasattr(self, "norm"):
            h = self.norm(hidden)
            return HeadOutput((self.fc(h[:, 0]) + self.fc_dist(h[:, 1])) / 2)
        pooled = self.impl.mean_pooled(hidden)  # Swin: returned, so BERxiT's learning-to-exit module can read it
        return HeadOutput(self.impl.fc(pooled), hidden, pooled=pooled)

    def adopt(self, backbone):
        if isinstance(getattr(self, "impl", None), MLPHead):
            self.impl.adopt(backbone)

