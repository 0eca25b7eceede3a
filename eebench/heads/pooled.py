"""``pooled_linear``: PABEE's exit (spec baselines §6a): the backbone's one pre-trained pooler (dense + tanh on
[CLS]), shared by every exit and trained with the backbone, then dropout and a per-exit linear classifier.

The head owns only its classifier; the pooler's weights stay the backbone's (not copied, not counted twice), and
each exit's call of it is charged to that exit's MACs.
"""
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import fail
from .base import ExitHead, HeadOutput, init_like_hf, register_head


@register_head("pooled_linear")
class SharedPoolerHead(ExitHead):
    def __init__(self, layout, num_classes, exit_layer, dropout: float = 0.0):
        super().__init__(layout, num_classes, exit_layer)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(layout.width, num_classes)
        init_like_hf(self)
        self._pooler: list[nn.Linear] = []  # a plain list: the backbone's module, not a submodule of this head

    def adopt(self, backbone):
        dense = backbone.pooler_dense()
        if dense is None:
            raise fail(f"head 'pooled_linear' shares the backbone's pooler, but the {backbone.family} backbone has "
                       "none", "use 'mlp' heads (each with its own pooler)")
        self._pooler[:] = [dense]

    def forward(self, hidden, mask=None):
        dense = self._pooler[0]
        pooled = self.dropout(torch.tanh(F.linear(hidden[:, 0], dense.weight, dense.bias)))
        return HeadOutput(self.classifier(pooled), pooled=pooled)
