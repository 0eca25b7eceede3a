"""One colour and marker per method, kept across every figure of every run; the mark of a reconstructed method."""
from __future__ import annotations

import zlib

KNOWN = ["backbone", "lgvit", "sdn", "pabee", "berxit", "vit_ee", "pcee", "deebert", "mlp_normal", "eeformer",
         "cost_eff", "cost_eff_8x"]
PALETTE = ["#000000", "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#a6761d", "#e7298a", "#7f7f7f"]
MARKERS = ["", "o", "s", "^", "D", "v", "P", "X", "*", "h", ">", "p", "<"]


def method_style(name: str) -> dict:
    idx = KNOWN.index(name) if name in KNOWN else len(KNOWN) + zlib.crc32(name.encode()) % (len(PALETTE) - len(KNOWN))
    return {"color": PALETTE[idx % len(PALETTE)], "marker": MARKERS[idx % len(MARKERS)] or None}


# a method whose recipe says ``reconstructed: true`` (EEformer: only the abstract is public) carries this mark in every
# table row and figure label, and every table or figure showing it carries the note
RECONSTRUCTED_MARK = "†"
RECONSTRUCTED_NOTE = ("† reconstructed: true — rebuilt by eebench from the paper's abstract (no text or code is "
                      "public; spec methods §6), not the authors' method")


def display_title(spec: dict) -> str:
    """A method's label in tables and figures: its title, marked when it is a reconstruction."""
    return spec["title"] + (f" {RECONSTRUCTED_MARK}" if spec.get("reconstructed") else "")


def has_mark(labels) -> bool:
    return any(RECONSTRUCTED_MARK in str(label) for label in labels)
