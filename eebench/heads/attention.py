"""``attention``: Table 3's "Attention" exit (the port's ``self_attention``): patch tokens → multi-head self-attention
as HF's DeiTAttention builds it (q, k, v with bias, output projection; no LayerNorm, residual or MLP) → LGViT's fused
classifier. 4D² + 4D + (D+1)C parameters (2,439,268 for ViT-B at 100 classes). Heads default to width / 64."""
from .base import ExitHead, FusedClassifier, HeadOutput, init_like_hf, patch_tokens, register_head
from .gah import SelfAttention


@register_head("attention")
class AttentionHead(ExitHead):
    distill_group = "global"

    def __init__(self, layout, num_classes, exit_layer, num_heads: int | None = None):
        super().__init__(layout, num_classes, exit_layer)
        self.attention = SelfAttention(layout.width, num_heads or max(layout.width // 64, 1), qkv_bias=True)
        self.classifier = FusedClassifier(layout, num_classes)
        init_like_hf(self)

    def forward(self, hidden, mask=None):
        tokens_mask = None if mask is None else mask[:, self.layout.num_prefix:]
        feature = self.attention(patch_tokens(hidden, self.layout), tokens_mask)
        return HeadOutput(self.classifier(feature, hidden, tokens_mask), feature)
