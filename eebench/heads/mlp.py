"""``mlp``: the DeeBERT off-ramp (spec baselines §4a): pooler Linear(D→D)+tanh on token 0 → dropout → Linear(D→C).

The LGViT port leaves the pooler randomly initialised (``init_highway_pooler`` is never called), so it is here too.
"""
from torch import nn

from .base import ExitHead, HeadOutput, init_like_hf, register_head


@register_head("mlp")
class MLPHead(ExitHead):
    def __init__(self, layout, num_classes, exit_layer, dropout: float = 0.0):
        super().__init__(layout, num_classes, exit_layer)
        d = layout.width
        self.pooler = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(d, num_classes)
        init_like_hf(self)

    def forward(self, hidden, mask=None):
        pooled = self.pooler(hidden[:, 0])
        return HeadOutput(self.classifier(self.dropout(pooled)))
