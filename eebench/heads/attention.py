"""``attention``: Table 3's "Attention" exit (the port's ``self_attention``): patch tokens → multi-head self-attention
as HF's DeiTAttention builds it (q, k, v with bias, output projection; no LayerNorm, residual or MLP) → LGViT's fused
classifier. 4D² + 4D + (D+1)C parameters (2,439,268 for ViT-B at 100 classes). Heads default to the backbone's head
count, as LGViT's head takes config.num_attention_heads (width / 64 where the backbone does not give one);
``num_heads: width_div_64`` keeps the older width / 64 rule, an integer fixes it."""
from .base import ExitHead, FusedClassifier, HeadOutput, init_like_hf, patch_tokens, register_head
from .gah import SelfAttention


@register_head("attention")
class AttentionHead(ExitHead):
    distill_group = "global"

    def __init__(self, layout, num_classes, exit_layer, num_heads: int | str | None = None):
        super().__init__(layout, num_classes, exit_layer)
        by_width = max(layout.width // 64, 1)
        if num_heads == "width_div_64":
            num_heads = by_width
        elif num_heads is None:
            num_heads = layout.num_heads or by_width
        self.attention = SelfAttention(layout.width, int(num_heads), qkv_bias=True)
        self.classifier = FusedClassifier(layout, num_classes)
        init_like_hf(self)

    def forward(self, hidden, mask=None):
        tokens_mask = None if mask is None else mask[:, self.layout.num_prefix:]
        feature = self.attention(patch_tokens(hidden, self.layout), tokens_mask)
        return HeadOutput(self.classifier(feature, hidden, tokens_mask), feature)
