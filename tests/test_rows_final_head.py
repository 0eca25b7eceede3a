"""Live inference's rows on a model that brings its own final head (COST-EFF's ``final_head``)."""
import torch

from eebench.build import build_model
from eebench.inference.rows import run_row

BERT = {"name": "bert_tiny_test", "pretrained": False}
COSTEFF = {"name": "cost_eff", "exit_layers": [1, 2, 3], "heads": [{"type": "tanh_cls"}] * 3,
           "final_head": {"type": "tanh_cls"}}


def test_live_rows_use_a_methods_own_final_head():
    """COST-EFF drops the backbone's pooler and classifier for its own final head (``final_head``). The last row of
    live inference must run that head, as ``MultiExitModel.forward`` does; it called the dropped classifier
    (TypeError: 'NoneType' object is not callable), so live early exit and the latency job failed on COST-EFF.
    Expected: the last row's logits are ``forward``'s ``final_logits`` (same modules, same order)."""
    torch.manual_seed(0)
    model = build_model(BERT, COSTEFF, 3).eval()
    assert model.backbone.classifier is None
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])
    q = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    with torch.no_grad():
        want = model(q)
        hidden, ctx = model.backbone.embed(q)
        rows = []
        for row in range(len(model.row_layers)):
            out = run_row(model, row, hidden, ctx)
            hidden = out.hidden
            rows.append(out.logits)
    assert torch.allclose(torch.stack(rows), want.stacked(), atol=1e-6, rtol=0)
