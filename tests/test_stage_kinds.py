"""Stage kinds and checkpoint shapes are registries: a method with its own training procedure or its own model shape
adds a runner or a hook, and the loop and the loaders find it without a branch for it (COST-EFF's pruning stage and
its pruned width are the built-in ones)."""
import pytest
import torch
from conftest import TINY_BACKBONE

from eebench.build import build_model, load_model
from eebench.checkpoint_shape import SHAPE_HOOKS, shape_record
from eebench.errors import EEBenchError
from eebench.io import save_torch
from eebench.training import loop
from eebench.training.runners import STAGE_RUNNERS, runner_for

METHOD = {"name": "m", "exit_layers": [2], "heads": [{"type": "mlp"}]}


def job(stage):
    return {"run": "t", "seed": 0, "dataset": {"name": "digits"}, "backbone": TINY_BACKBONE, "method": METHOD,
            "stage": {"name": "s", "loss": "weighted", "train": "all", "epochs": 1, "batch_size": 8, "lr": 1e-3,
                      **stage}}


def test_the_built_in_kinds_are_registered():
    from eebench.slender.train import train_slender_stage

    assert runner_for({"slenderise": {"target": "2x"}}) is train_slender_stage
    assert runner_for({"loss": "weighted"}) is None  # the loop's own
    assert "slender_shape" in SHAPE_HOOKS


def test_a_registered_stage_kind_trains_the_stages_that_set_its_option(tmp_path, monkeypatch):
    calls = []

    def toy_runner(job, out, **kwargs):
        calls.append((job, out, kwargs))
        return [{"epoch": 1}]

    monkeypatch.setitem(STAGE_RUNNERS._items, "toy_kind", toy_runner)
    spec = job({"toy_kind": {"width": 3}})
    assert loop.train_stage(spec, tmp_path / "s.pt", init="a.pt", teacher="t.pt", keep_resume=True) == [{"epoch": 1}]
    (got_job, out, kwargs), = calls
    assert got_job is spec and out == tmp_path / "s.pt"
    assert kwargs["init"] == "a.pt" and kwargs["teacher"] == "t.pt" and kwargs["keep_resume"] is True
    assert set(kwargs) == {"init", "progress", "logits_out", "eval_batch_size", "epochs_csv", "tensorboard_dir",
                           "started", "teacher", "keep_resume"}  # every argument of train_stage
    assert not (tmp_path / "s.pt").exists()  # the loop itself trained nothing


def test_a_stage_of_two_kinds_is_refused(monkeypatch):
    monkeypatch.setitem(STAGE_RUNNERS._items, "toy_kind", lambda *a, **k: [])
    with pytest.raises(EEBenchError, match="options of different stage kinds"):
        runner_for({"name": "s", "toy_kind": {"width": 3}, "slenderise": {"target": "2x"}})


class ToyShape:
    """A stand-in for a method that reshapes its model: the width it recorded, set back on load."""

    def __init__(self):
        self.applied = []

    def record(self, model):
        return getattr(model, "toy_width", None)

    def apply(self, model, value, where):
        self.applied.append((value, where))
        model.toy_width = value


def test_a_registered_shape_hook_is_recorded_and_rebuilt_on_load(tmp_path, monkeypatch):
    hook = ToyShape()
    monkeypatch.setitem(SHAPE_HOOKS._items, "toy_shape", hook)
    spec = job({})
    model = build_model(spec["backbone"], METHOD, 10, pretrained=False)
    assert shape_record(model) == {}  # the shape its job builds: nothing recorded
    model.toy_width = 3
    assert shape_record(model) == {"toy_shape": 3}  # a non-BERT model: the pruned-width hook records nothing
    save_torch(tmp_path / "c.pt", {"model": model.state_dict(), "job": spec, **shape_record(model)})
    loaded = load_model(tmp_path / "c.pt")
    assert hook.applied == [(3, f"checkpoint {tmp_path / 'c.pt'}")] and loaded.toy_width == 3
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
