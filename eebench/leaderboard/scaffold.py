"""``eebench new-head NAME``: the head file, a recipe stanza (the method a comparison trains) and a test."""
from __future__ import annotations

from pathlib import Path

from ..errors import fail

HEAD = '''"""{name}: an exit head. Registered by importing this file (config: plugins: [{path}])."""
import torch
from torch import nn

from eebench.heads import ExitHead, HeadOutput, register_head


@register_head("{name}")
class {cls}(ExitHead):
    def __init__(self, layout, num_classes, exit_layer):
        super().__init__(layout, num_classes, exit_layer)
        self.norm = nn.LayerNorm(layout.width)
        self.fc = nn.Linear(layout.width, num_classes)

    def forward(self, hidden, mask=None):
        # hidden: [batch, tokens, width], the raw block output; mask: [batch, tokens] for text, else None
        if mask is None:
            pooled = hidden.mean(dim=1)
        else:
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return HeadOutput(self.fc(self.norm(pooled)))
'''

RECIPE = '''# The method `eebench compare --head {name}` trains: mlp_normal's protocol (exits after every block
# but the last, joint training, the confidence sweep) with {name} heads. Use it in a config as
#   plugins: [{path}]
#   extra_recipe_dirs: [{dir}]
#   methods: {{{name}: {{}}}}
name: {name}
title: {name}
citation: "new head"
positions: all
heads: {{type: {name}}}
stages:
  - name: train
    loss: normal
policy:
  name: lgvit_confidence
  sweep:
    threshold: [0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999, 1.0]
'''

TEST = '''"""The {name} head passes eebench check-head: shapes on tiny ViT/DeiT/Swin, backward, determinism, MACs."""
from pathlib import Path

from eebench.leaderboard.headcheck import check_head
from eebench.plugins import load_plugin_files


def test_{name}_passes_check_head():
    load_plugin_files([Path(__file__).with_name("{name}.py")])
    check_head("{name}", log=lambda line: None)
'''


def new_head(name: str, directory: str | Path) -> list[Path]:
    if not name.isidentifier():
        raise fail(f"head name {name!r} is not a Python identifier", "use letters, digits and underscores")
    d = Path(directory)
    files = {d / f"{name}.py": HEAD, d / f"{name}.yaml": RECIPE, d / f"test_{name}.py": TEST}
    for f in files:
        if f.exists():
            raise fail(f"{f} already exists", "choose another name or directory")
    d.mkdir(parents=True, exist_ok=True)
    cls = "".join(p.capitalize() for p in name.split("_")) + "Head"
    for f, text in files.items():
        f.write_text(text.format(name=name, cls=cls, path=d / f"{name}.py", dir=d))
    return list(files)
