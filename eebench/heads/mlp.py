"""``mlp``: the DeeBERT off-ramp (spec baselines §4a): pooler Linear(D→D)+tanh on token 0 → dropout → Linear(D→C).

The LGViT port leaves the pooler randomly initialised (``init_highway_pooler`` is never called), so it is by default;
``copy_pooler: true`` copies the backbone's (pre-trained) pooler into it, as DeeBERT and BERxiT do.
"""
from torch import nn

from ..errors import fail

from .base import ExitHead, HeadOutput, init_like_hf, register_head


@register_head("mlp")
class MLPHead(ExitHead):
    def __init__(self, layout, num_classes, exit_layer, dropout: float = 0.0, copy_pooler: bool = False):
        super().__init__(layout, num_classes, exit_layer)
        self.copy_pooler = copy_pooler
        d = layout.width
        self.pooler = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(d, num_classes)
        init_like_hf(self)

    def adopt(self, backbone):
        source = backbone.pooler_dense() if self.copy_pooler else None
        if self.copy_pooler and source is None:
            raise fail(f"copy_pooler: the {backbone.family} backbone has no pooler to copy", "set copy_pooler: false")
        if source is not None:
            self.pooler[0].load_state_dict(source.state_dict())

    def forward(self, hidden, mask=None):
        pooled = self.dropout(self.pooler(hidden[:, 0]))
        return HeadOutput(self.classifier(pooled), pooled=pooled)
