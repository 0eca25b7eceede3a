"""A head in one file outside the package: found through a config's `plugins:` key, recorded (path + hash) in the
spec of exactly the jobs that use it, scaffolded by `eebench new-head`, checked by `eebench check-head`."""
import pytest

from eebench.cli import main
from eebench.errors import EEBenchError
from eebench.plugins import load_plugin_files

WRONG_SHAPE = '''
from torch import nn
from eebench.heads import ExitHead, HeadOutput, register_head


@register_head("wrong_shape")
class WrongShape(ExitHead):
    def __init__(self, layout, num_classes, exit_layer):
        super().__init__(layout, num_classes, exit_layer)
        self.fc = nn.Linear(layout.width, num_classes + 1)   # one class too many

    def forward(self, hidden, mask=None):
        return HeadOutput(self.fc(hidden[:, 0]))
'''


def test_wrong_output_shape_fails_check_head_in_one_line(tmp_path, capsys):
    path = tmp_path / "wrong_shape.py"
    path.write_text(WRONG_SHAPE)
    assert main(["check-head", "wrong_shape", "--plugin", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("eebench: error: head 'wrong_shape' on vit_tiny_digits")
    assert "(3, 6)" in err and "expected (3, 5)" in err


def test_missing_or_broken_plugin_file_is_one_clear_error(tmp_path):
    with pytest.raises(EEBenchError, match="plugin file .*nowhere.py does not exist"):
        load_plugin_files([tmp_path / "nowhere.py"])
    bad = tmp_path / "broken.py"
    bad.write_text("import no_such_module_anywhere\n")
    with pytest.raises(EEBenchError, match="failed to import .*ModuleNotFoundError"):
        load_plugin_files([bad])


def test_plan_records_the_head_file_only_in_the_jobs_that_use_it(tmp_path, monkeypatch, tiny_backbone):
    from eebench.leaderboard.scaffold import new_head
    from eebench.plan import Plan, validate_config

    monkeypatch.chdir(tmp_path)
    new_head("planned_head", "my_heads")
    cfg = validate_config({"run": "p", "dataset": {"name": "digits"}, "backbone": tiny_backbone,
                           "plugins": ["my_heads/planned_head.py"],
                           "methods": {"sdn": {}, "planned_head": {"recipe": "mlp_normal",
                                                                   "heads": {"type": "planned_head"}}}})
    plan = Plan(cfg)
    job = plan.train_job("planned_head", 0, "train")
    assert [p["path"] for p in job["method"]["plugins"]] == ["my_heads/planned_head.py"]
    assert len(job["method"]["plugins"][0]["sha256"]) == 64
    assert "plugins" not in plan.train_job("sdn", 0, "train")["method"]  # baselines' specs (and jobs) are untouched
    assert plan.method("planned_head")["stages"][0]["loss"] == "normal"  # built from mlp_normal's protocol

    from eebench.plugins import load_recorded

    (tmp_path / "my_heads" / "planned_head.py").write_text("# edited\n")
    with pytest.raises(EEBenchError, match="changed since the run was planned"):
        load_recorded(job["method"]["plugins"])


def test_new_head_refuses_to_overwrite(tmp_path):
    from eebench.leaderboard.scaffold import new_head

    files = new_head("fresh", tmp_path)
    assert sorted(f.name for f in files) == ["fresh.py", "fresh.yaml", "test_fresh.py"]
    with pytest.raises(EEBenchError, match="already exists"):
        new_head("fresh", tmp_path)


def test_check_head_covers_the_text_backbone_with_and_without_padding(capsys):
    """The text family's example input is a dict of token tensors: check-head once crashed on it (`.shape` of a dict)
    after the three vision lines. Now every family gets its ok line, the text one for both an unpadded batch and one
    whose rows carry a padding mask."""
    assert main(["check-head", "mlp"]) == 0
    out = capsys.readouterr().out
    for family_preset in ("vit_tiny_digits", "deit_tiny_digits", "swin_tiny_test", "bert_tiny_test"):
        assert f"ok mlp on {family_preset}:" in out, out
    text_line = next(line for line in out.splitlines() if "bert_tiny_test" in line)
    assert "with and without padding" in text_line


MASK_BLIND = '''
import torch
from torch import nn
from eebench.heads import ExitHead, HeadOutput, register_head


@register_head("padding_nan")
class PaddingNaN(ExitHead):
    """Divides by the mask: fine without padding, non-finite logits on padded rows."""
    def __init__(self, layout, num_classes, exit_layer):
        super().__init__(layout, num_classes, exit_layer)
        self.fc = nn.Linear(layout.width, num_classes)

    def forward(self, hidden, mask=None):
        if mask is not None:
            hidden = hidden / mask.unsqueeze(-1).to(hidden.dtype)
        return HeadOutput(self.fc(hidden.mean(1)))
'''


def test_check_head_catches_a_head_that_breaks_on_padded_text(tmp_path, capsys):
    path = tmp_path / "padding_nan.py"
    path.write_text(MASK_BLIND)
    assert main(["check-head", "padding_nan", "--plugin", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("eebench: error: head 'padding_nan' on bert_tiny_test (padding mask)"), err
