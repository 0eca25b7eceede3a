"""One colour and marker per method, kept across every figure of every run."""
from __future__ import annotations

import zlib

KNOWN = ["backbone", "lgvit", "sdn", "pabee", "berxit", "vit_ee", "pcee", "deebert", "mlp_normal"]
PALETTE = ["#000000", "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f"]
MARKERS = ["", "o", "s", "^", "D", "v", "P", "X", "*", "h", "<"]


def method_style(name: str) -> dict:
    idx = KNOWN.index(name) if name in KNOWN else len(KNOWN) + zlib.crc32(name.encode()) % (len(PALETTE) - len(KNOWN))
    return {"color": PALETTE[idx % len(PALETTE)], "marker": MARKERS[idx % len(MARKERS)] or None}
