"""``vit_ee``: ViT-EE (Bakhtiarnia et al., BMVC 2021) as the LGViT port builds it: a fresh, randomly initialised
pre-LN transformer block (HF ViT layer: MHSA with qkv bias + MLP, GELU) over the whole sequence, special tokens
included, then the port's ``linear`` exit (ViT: pooler + linear on token 0; DeiT: LN + CLS/DIST linears). Width, heads (default width / 64) and MLP size (default
4× width; Swin's port uses 3072 at width 512) are options."""
from .base import ExitHead, HeadOutput, additive_mask, init_like_hf, register_head
from .linear import PortLinearHead


@register_head("vit_ee")
class ViTEEHead(ExitHead):
    def __init__(self, layout, num_classes, exit_layer, num_heads: int | None = None, mlp_size: int | None = None):
        super().__init__(layout, num_classes, exit_layer)
        from transformers import ViTConfig
        from transformers.models.vit.modeling_vit import ViTLayer

        d = layout.width
        cfg = ViTConfig(hidden_size=d, num_attention_heads=num_heads or max(d // 64, 1),
                        intermediate_size=mlp_size or 4 * d, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        layer_norm_eps=1e-12)
        cfg._attn_implementation = "eager"
        self.block = ViTLayer(cfg)
        init_like_hf(self.block)
        self.exit = PortLinearHead(layout, num_classes, exit_layer)

    def forward(self, hidden, mask=None):
        out = self.block(hidden) if mask is None else self.block(hidden, attention_mask=additive_mask(mask, hidden.dtype))
        out = out[0] if isinstance(out, tuple) else out
        return HeadOutput(self.exit(out).logits)
