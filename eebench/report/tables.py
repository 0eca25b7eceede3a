"""Paper-style tables written three ways: markdown (with notes under it), CSV (raw numbers), LaTeX (booktabs)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..io import write_text
from .style import RECONSTRUCTED_NOTE, has_mark


def latex_escape(text: str) -> str:
    for a, b in [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("±", r"$\pm$"),
                 ("×", r"$\times$")]:
        text = text.replace(a, b)
    return text


def to_booktabs(df: pd.DataFrame, caption: str) -> str:
    cols = "l" + "r" * (len(df.columns) - 1)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(caption)}}}", rf"\begin{{tabular}}{{{cols}}}",
             r"\toprule", " & ".join(latex_escape(str(c)) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(str(v)) for v in row) + r" \\" for row in df.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def write_table(display: pd.DataFrame, raw: pd.DataFrame, stem: str | Path, title: str, notes: list[str],
                tex: bool = True) -> None:
    """``display`` has formatted cells (md/tex); ``raw`` keeps the numbers (csv). A table with a reconstructed
    method's mark gets the mark's note. ``tex``: False where the table ships without LaTeX (a board's files)."""
    stem = Path(stem)
    if has_mark(display.astype(str).to_numpy().ravel()) and RECONSTRUCTED_NOTE not in notes:
        notes = [*notes, RECONSTRUCTED_NOTE]
    md = [f"## {title}", "", display.to_markdown(index=False, disable_numparse=True), ""] + [f"- {n}" for n in notes] + [""]
    write_text(stem.with_suffix(".md"), "\n".join(md))
    write_text(stem.with_suffix(".csv"), raw.to_csv(index=False))
    if tex:
        write_text(stem.with_suffix(".tex"), to_booktabs(display, title))
