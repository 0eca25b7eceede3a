"""Figure output: every figure as PNG (to look at) and PDF (for papers), written atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from ..io import atomic_path  # noqa: E402


def save_figure(fig, stem) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    for ext in ("png", "pdf"):
        path = Path(f"{stem}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext)
    plt.close(fig)
