"""``tanh_cls``: COST-EFF's exit (spec methods §7.1): tanh of the block's [CLS] state → dropout → Linear(D→C).

No dense pooler (the official ``pooler_dense=False``, ``pooling_mode=cls``), so an exit costs one D×C linear and its
width follows the residual stream, which slenderisation keeps. The final classifier of a COST-EFF model has the same
form (``final_head`` in the recipe).
"""
import torch
from torch import nn

from .base import ExitHead, HeadOutput, init_like_hf, register_head


@register_head("tanh_cls")
class TanhCLSHead(ExitHead):
    def __init__(self, layout, num_classes, exit_layer, dropout: float = 0.1):
        super().__init__(layout, num_classes, exit_layer)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(layout.width, num_classes)
        init_like_hf(self)

    def forward(self, hidden, mask=None):
        pooled = torch.tanh(hidden[:, 0])
        return HeadOutput(self.classifier(self.dropout(pooled)), pooled=pooled)
