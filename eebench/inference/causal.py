"""Deciding from the rows computed so far, with the unchanged offline policy code.

Every policy is causal in its rows (spec baselines §1): whether row j answers depends only on rows 0..j, and the one
non-causal step, SDN's fallback, happens only when no row fired, i.e. after the whole network ran (its
``compute_index`` is the last row). So after computing rows 0..k, ``policy.decide`` is called on all rows with the
not-yet-computed ones holding a placeholder, and a sample's decision is *settled* iff its ``compute_index`` <= k.

Why this is exact, for any finite placeholder: each policy picks the first row j of its tested rows whose rule fires,
where the rule at j reads rows 0..j only (a per-row score, or a prefix scan: PABEE/LGViT run lengths, PCEE's
counter); the number of tested rows and per-row thresholds depend on the row COUNT, which is kept. Hence (1) for
j <= k the rule gives the same answer with or without placeholders, so the first firing row in 0..k is the same;
(2) if none fires in 0..k, both the true and the placeholder decision compute past k (a later row, or a fallback with
compute_index = last row) and the sample is not settled. Settled decisions also return the same output: it is the
exit row's logits, or PCEE's ensemble, which averages rows start..exit <= k and multiplies the others by 0 (exact for
finite values, hence no NaN/inf placeholder). The test is on ``compute_index``, not ``exit_index``: SDN's
``most_confident`` fallback may answer with an early row but only after the last row ran.
"""
from __future__ import annotations

import torch

from ..policies import Decision, Policy

PLACEHOLDER = 0.0  # any finite value works (see above); 0 keeps PCEE's masked ensemble sum finite


def decide_prefix(policy: Policy, logits: torch.Tensor, computed: int,
                  lte_outputs: torch.Tensor | None = None) -> tuple[Decision, torch.Tensor]:
    """``policy.decide`` on ``logits[rows, batch, classes]`` whose rows 0..``computed`` are real (later rows: any
    finite placeholder; same for ``lte_outputs[rows-1, batch]``). Returns the decision and ``settled[batch]``: where
    it is True the decision equals the full-network one; elsewhere it is meaningless and more rows are needed."""
    decision = policy.decide(logits, **({} if lte_outputs is None else {"lte_outputs": lte_outputs}))
    return decision, decision.compute_index <= computed


class RowBuffer:
    """A batch's rows computed so far, in the ``[rows, batch, classes]`` layout policies read (fp32, like the
    offline cache); rows not computed yet hold the placeholder."""

    def __init__(self, rows: int, batch: int, classes: int, device: torch.device | str, lte: bool = False):
        self.logits = torch.full((rows, batch, classes), PLACEHOLDER, device=device)
        self.lte = torch.full((rows - 1, batch), PLACEHOLDER, device=device) if lte else None

    def put(self, row: int, logits: torch.Tensor, lte: torch.Tensor | None = None,
            index: torch.Tensor | None = None) -> None:
        """Store row ``row`` of the samples ``index`` (all when None)."""
        at = slice(None) if index is None else index
        self.logits[row, at] = logits.float()
        if lte is not None and self.lte is not None:
            self.lte[row, at] = lte.float()

    def decide(self, policy: Policy, row: int, index: torch.Tensor | None = None) -> tuple[Decision, torch.Tensor]:
        """:func:`decide_prefix` for the samples ``index`` (all when None), rows 0..``row`` being computed."""
        logits = self.logits if index is None else self.logits[:, index]
        lte = self.lte if index is None or self.lte is None else self.lte[:, index]
        return decide_prefix(policy, logits, row, lte)
