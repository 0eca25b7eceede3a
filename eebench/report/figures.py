"""Figure output: every figure as PNG (to look at) and PDF (for papers), written atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from ..io import atomic_path  # noqa: E402
from .style import RECONSTRUCTED_NOTE, has_mark  # noqa: E402


def as_text(fig) -> None:
    """Draw every label of ``fig`` (titles, legend entries, axis labels, notes) as the text it is. Method titles come
    from configs and head files: a title holding '$…$' would otherwise go to matplotlib's mathtext, and one it cannot
    parse raises when the figure is drawn. Tick labels keep mathtext: matplotlib's own formatters write them in it
    (a log axis' 10^k)."""
    from matplotlib.text import Text

    ticks = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks.add(axis.offsetText)
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                ticks.update((tick.label1, tick.label2))
    for text in fig.findobj(Text):
        if text not in ticks:
            text.set_parse_math(False)


def save_figure(fig, stem) -> None:
    import matplotlib.pyplot as plt

    as_text(fig)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        path = Path(f"{stem}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext)
    plt.close(fig)


def finish_axes(ax, xlabel: str, ylabel: str, title: str, scale: str, legend_loc: str) -> None:
    """The decorations every single-panel figure shares: labels, a title with the run's scale under it, grid, legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\n{scale}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc=legend_loc)
    if has_mark(ax.get_legend_handles_labels()[1]):
        ax.figure.text(0.01, 0.005, RECONSTRUCTED_NOTE, fontsize=5.5, ha="left", va="bottom")
