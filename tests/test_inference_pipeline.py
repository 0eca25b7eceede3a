"""Staged batch-1 early exit (``eebench.inference.pipeline`` + ``segments``: the control logic of the CUDA-graph path)
on CPU, with eager segments standing in for graph replays:

* for every registered policy (``test_inference``'s cases and tiny models), schedules sync/overlap × decisions on
  the host/device, and the conditional schedule (device decisions), give the offline replay's predictions, exit
  rows, compute rows and outputs, and launch compute_index+1 segments (sync, conditional: the eager runner's IF
  emulation really runs that many) or min(compute_index+2, rows) (overlap);
* the schedules launch, wait and check in the documented order;
* device-decision segments read no tensor value on the host, op by op, with device constants served as during
  capture, and return one packed vector of the documented length; the conditional program, captured through the
  same IF-node code as on CUDA (a stand-in graph), is flat, conditions every later segment on the one static flag
  and reads nothing on the host either;
* the capture helpers, and the one-line errors (CUDA-only entry points on CPU, missing conditional nodes, bad
  options).
"""
from __future__ import annotations

import pytest
import torch
from test_inference import MODEL_CASES, N, assert_same, mixed_params, offline  # noqa: F401 (a fixture)
from torch.overrides import TorchFunctionMode

from eebench.errors import EEBenchError
from eebench.inference.conditional import (
    ConditionalChain,
    always,
    program,
    run_conditional,
)
from eebench.inference.graphs import (
    DeviceConstants,
    GraphConditional,
    GraphedExits,
    GraphedForward,
    capture_failure,
    conditional_failure,
    if_node,
    require_if_nodes,
)
from eebench.inference.pipeline import SCHEDULES, StagedExits, run_image
from eebench.inference.segments import DECIDE, HEADER, SETTLED, SegmentChain
from eebench.policies import build_policy
from eebench.policies.lgvit import LGViTEntropy

FIELDS = ("exit_index", "prediction", "compute_index", "output", "is_early")


@pytest.fixture(scope="module")
def models(request):
    """``test_inference``'s ``offline`` fixture: name → (model, inputs, offline logits, LTE outputs)."""
    return request.getfixturevalue("offline")


def policy_for(models, model_name, case):
    name, fixed, key, score, _ = case
    model, x, logits, lte = models[model_name]
    policy = build_policy(name, **mixed_params(name, fixed, key, score, logits, lte))
    return model, x, policy, policy.decide(logits, **({"lte_outputs": lte} if lte is not None else {}))


def concat(decisions):
    return type(decisions[0])(**{f: None if getattr(decisions[0], f) is None
                                 else torch.cat([getattr(d, f) for d in decisions]) for f in FIELDS})


RUNS = [(s, d) for s in SCHEDULES for d in DECIDE if s != "conditional" or d == "device"]
AHEAD = {"sync": 1, "overlap": 2, "conditional": 1}  # segments run = min(compute_index + AHEAD, rows)


@pytest.mark.parametrize("schedule, decide", RUNS, ids=[f"{s}-{d}" for s, d in RUNS])
@pytest.mark.parametrize("model_name, case", MODEL_CASES)
def test_staged_equals_offline_replay(models, model_name, case, schedule, decide):
    model, x, policy, expected = policy_for(models, model_name, case)
    exits = StagedExits(model, x[:1], schedule=schedule, decide=decide)
    rows = len(model.row_layers)
    decisions, executed, ran = [], [], []
    for i in range(N):
        decisions.append(exits(x[i:i + 1], policy))
        executed.append(exits.executed)
        if schedule == "conditional":  # what the IF emulation really ran, not only what was recorded
            ran.append(exits.prepare_conditional(policy).ran)
    assert_same(concat(decisions), expected, regression=model_name == "regression")
    assert executed == torch.clamp(expected.compute_index + AHEAD[schedule], max=rows).tolist()
    assert ran == (executed if schedule == "conditional" else [])


class Recorder:
    """A segment runner that logs calls; its vectors say "settled" from row ``settle`` on."""

    def __init__(self, rows, settle):
        self.rows, self.settle, self.log = rows, settle, []

    def load(self, x):
        self.log.append("load")

    def launch(self, k):
        self.log.append(f"launch{k}")

    def result(self, k):
        self.log.append(f"wait{k}")
        return torch.tensor([float(k >= self.settle)])


class FlagCheck:
    def reset(self):
        pass

    def __call__(self, k, vector):
        return k if vector[0] > 0 else None


@pytest.mark.parametrize("settle, schedule, log", [
    (1, "sync", ["load", "launch0", "wait0", "launch1", "wait1"]),
    (1, "overlap", ["load", "launch0", "launch1", "wait0", "launch2", "wait1"]),
    (2, "overlap", ["load", "launch0", "launch1", "wait0", "launch2", "wait1", "wait2"]),  # nothing past the last
    (0, "overlap", ["load", "launch0", "launch1", "wait0"]),
])
def test_schedule_order(settle, schedule, log):
    runner = Recorder(3, settle)
    decision, launched = run_image(runner, FlagCheck(), torch.zeros(1), schedule)
    assert runner.log == log and decision == settle
    assert launched == sum(entry.startswith("launch") for entry in log)


class NoHostReads(TorchFunctionMode):
    """Fails on every op that, on a GPU, reads a device value on the host or makes a shape depend on one."""

    READS = frozenset({torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__int__,
             torch.Tensor.__float__, torch.Tensor.__index__, torch.Tensor.numpy, torch.Tensor.cpu, torch.nonzero,
             torch.Tensor.nonzero, torch.masked_select, torch.Tensor.masked_select, torch.unique, torch.equal,
             torch.allclose, torch.is_nonzero, torch.repeat_interleave})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.READS or (func is torch.where and len(args) + len(kwargs) == 1):
            raise AssertionError(f"host read of a device value: {func}")
        if func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__):
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            if any(torch.is_tensor(i) and i.dtype == torch.bool for i in index):
                raise AssertionError("boolean-mask indexing (data-dependent shape)")
        if func in (torch.tensor, torch.as_tensor) and args and not torch.is_tensor(args[0])  \
                and "device" in kwargs:
            raise AssertionError("host→device constant not served by DeviceConstants")
        return func(*args, **kwargs)


@pytest.mark.parametrize("model_name, case", MODEL_CASES)
def test_device_segments_are_capturable(models, model_name, case):
    """Capture on CPU, as far as it can be simulated: a recording run, then every segment under the serving
    constants and the host-read guard, in order; each returns one packed vector of the documented length."""
    model, x, policy, _ = policy_for(models, model_name, case)
    chain = SegmentChain(model, x[:1].clone(), policy)
    constants = DeviceConstants("cpu")
    with torch.no_grad():
        with constants:
            recorded = [chain(k) for k in range(chain.rows)]
        constants.serving = True
        with NoHostReads(), constants:
            vectors = [chain(k) for k in range(chain.rows)]
    for vector, before in zip(vectors, recorded):
        assert torch.is_tensor(vector) and vector.shape == (HEADER + model.num_classes,)
        assert torch.equal(vector, before)


class StandInGraph:
    """What ``if_node`` calls on a capturing ``CUDAGraph``, logged."""

    def __init__(self):
        self.log, self.preds = [], []

    def begin_capture_to_if_node(self, pred):
        self.log.append("begin")
        self.preds.append(pred)

    def end_capture_to_conditional_node(self):
        self.log.append("end")


@pytest.mark.parametrize("model_name, case", MODEL_CASES)
def test_conditional_program_is_capturable(models, model_name, case):
    """The conditional program as ``GraphConditional`` captures it (IF nodes opened by ``if_node``; every body is
    captured, whatever the flag): after a recording warm-up, under the serving constants and the host-read guard.
    The nodes are flat, one per later segment, all on the static ``go``; ``answer`` and ``go`` end as the last
    segment's vector and its "not settled"."""
    model, x, policy, _ = policy_for(models, model_name, case)
    cond = ConditionalChain(SegmentChain(model, x[:1].clone(), policy))
    constants, graph = DeviceConstants("cpu"), StandInGraph()
    with torch.no_grad():
        with constants:
            program(cond, always)
        recorded = [v.clone() for v in cond.vectors]
        constants.serving = True
        with NoHostReads(), constants:
            program(cond, if_node(graph))
    assert graph.log == ["begin", "end"] * (cond.rows - 1)
    assert all(pred is cond.go for pred in graph.preds) and cond.go.dtype == torch.bool and cond.go.shape == ()
    for vector, before in zip(cond.vectors, recorded):
        assert torch.equal(vector, before)
    assert torch.equal(cond.answer, cond.vectors[-1])
    assert bool(cond.go) == (float(cond.vectors[-1][SETTLED]) <= 0.5)


def test_if_node_is_closed_when_its_body_fails():
    graph = StandInGraph()

    def body():
        raise RuntimeError("operation not permitted when stream is capturing")

    with pytest.raises(RuntimeError, match="not permitted"):
        if_node(graph)(torch.zeros((), dtype=torch.bool), body)
    assert graph.log == ["begin", "end"]


def test_conditional_errors_are_one_line(models, monkeypatch):
    model, x, _, _ = models["mixed"]
    policy = build_policy("lgvit_entropy", threshold=0.5)
    with pytest.raises(EEBenchError, match='"conditional" needs the exit decision on the device') as info:
        StagedExits(model, x[:1], schedule="conditional", decide="host")
    assert "\n" not in str(info.value)
    exits = StagedExits(model, x[:1], schedule="sync", decide="host")
    with pytest.raises(EEBenchError, match="got decide='host'"):
        exits(x[:1], policy, schedule="conditional")
    with pytest.raises(EEBenchError, match="run_image got schedule 'conditional'"):
        run_image(*exits.prepare(policy), x[:1], "conditional")
    with pytest.raises(EEBenchError, match="chain without a policy"):
        ConditionalChain(SegmentChain(model, x[:1].clone()))

    class Unsettled:  # a runner whose program ended unsettled (a broken policy)
        cond = ConditionalChain(SegmentChain(model, x[:1].clone(), policy))

        def load(self, x):
            pass

        def run(self):
            return torch.zeros(HEADER + model.num_classes)

    with pytest.raises(EEBenchError, match="unsettled after the last row"):
        run_conditional(Unsettled(), x[:1])
    message = str(conditional_failure(RuntimeError("CUDA error: invalid argument\nmore text")))
    assert "\n" not in message and "invalid argument" in message and 'schedule "overlap" or "sync"' in message
    monkeypatch.setattr(torch.cuda, "CUDAGraph", type("CUDAGraph", (), {}))  # a torch without conditional nodes
    with pytest.raises(EEBenchError, match='no CUDA-graph conditional nodes.*use schedule "overlap"') as info:
        require_if_nodes()
    assert "\n" not in str(info.value)


def test_host_read_guard_catches_a_peeking_policy(models):
    model, x, _, _ = models["mixed"]

    class Peeking(LGViTEntropy):  # a Python branch on a tensor value: not capturable
        def decide(self, logits, **extra):
            return super().decide(logits if logits.abs().max() < 1e6 else logits.clamp(-1e6, 1e6), **extra)

    chain = SegmentChain(model, x[:1].clone(), Peeking(threshold=0.5))
    with torch.no_grad(), NoHostReads(), pytest.raises(AssertionError, match="__bool__"):
        chain(0)


def test_device_constants_serve_what_warm_up_made():
    constants = DeviceConstants("cpu")
    with constants:
        a = torch.tensor([0.5, 1.5], dtype=torch.float32, device="cpu")
        b = torch.as_tensor([1, 2], dtype=torch.long, device="cpu")
        torch.tensor([3.0])  # no device: not a device constant
    assert len(constants.kept) == 2
    constants.serving = True
    with constants:
        served = torch.tensor([0.5, 1.5], dtype=torch.float32, device="cpu")
        assert torch.equal(served, a) and torch.equal(torch.as_tensor([1, 2], dtype=torch.long, device="cpu"), b)
        served.fill_(9.0)  # a copy: the kept constant is untouched
        assert torch.equal(torch.tensor([0.5, 1.5], dtype=torch.float32, device="cpu"), a)
        with pytest.raises(EEBenchError, match=r"device constant from \[7\] during capture"):
            torch.tensor([7], device="cpu")


def test_capture_failure_is_one_line():
    policy = build_policy("lgvit_entropy", threshold=0.5)
    try:
        try:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore text")
        except RuntimeError:
            raise RuntimeError("capture invalidated")
    except RuntimeError as error:
        message = str(capture_failure(policy, error))
    assert "\n" not in message and "operation not permitted" in message and 'decide="host"' in message


def test_cuda_entry_points_refuse_cpu_in_one_line(models):
    model, x, _, _ = models["mixed"]
    policy = build_policy("lgvit_entropy", threshold=0.5)
    cond = ConditionalChain(SegmentChain(model, x[:1].clone(), policy))
    for build in (lambda: GraphedExits(model, x[:1]), lambda: GraphedForward(model.backbone, x[:1]),
                  lambda: GraphedExits(model, x[:1], schedule="sync", decide="host"),
                  lambda: GraphedExits(model, x[:1], schedule="conditional"),
                  lambda: GraphConditional(cond, warmup=1, stream=None)):
        with pytest.raises(EEBenchError, match="CUDA graphs need a CUDA GPU") as info:
            build()
        assert "\n" not in str(info.value)


def test_staged_exits_errors(models):
    model, x, _, _ = models["mixed"]
    policy = build_policy("lgvit_entropy", threshold=0.5)
    with pytest.raises(EEBenchError, match=r"example of shape \(2, 1, 8, 8\)"):
        StagedExits(model, x[:2])
    with pytest.raises(EEBenchError, match="unknown schedule 'ahead'"):
        StagedExits(model, x[:1], schedule="ahead")
    with pytest.raises(EEBenchError, match="unknown decide='gpu'"):
        StagedExits(model, x[:1], decide="gpu")
    exits = StagedExits(model, x[:1])
    with pytest.raises(EEBenchError, match=r"built for inputs \(1, 1, 8, 8\), got \(2, 1, 8, 8\)"):
        exits(x[:2], policy)
    with pytest.raises(EEBenchError, match="unknown schedule 'later'"):
        exits(x[:1], policy, schedule="later")
    model.train()
    try:
        with pytest.raises(EEBenchError, match="call model.eval"):
            StagedExits(model, x[:1])
    finally:
        model.eval()
