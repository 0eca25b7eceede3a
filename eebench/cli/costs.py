"""Params and MACs: `eebench costs` (a method on a backbone, printed) and the DAG steps that write a run's
cost files (`measure-costs`, `run-costs`)."""
from __future__ import annotations

from .args import json_arg


def cmd_costs(args) -> None:
    from ..build import build_model
    from ..measure.macs import cost_summary
    from ..recipes import resolve_method

    overrides = {"image_size": args.image_size} if args.image_size else {}
    backbone = {"name": args.backbone, **overrides}
    from ..backbones import BACKBONES

    depth = int(BACKBONES.get(args.backbone).defaults.get("num_hidden_layers", 12))
    overrides = {}
    if args.heads:
        overrides["heads"] = {"type": args.heads}
    if args.positions:
        overrides["positions"] = [int(p) for p in args.positions.split(",")]
    if args.slender:
        overrides["slender"] = args.slender
    method = resolve_method(args.method, overrides, depth, {}, family=BACKBONES.get(args.backbone).family)
    model = build_model(backbone, method, args.num_classes, pretrained=False, attn_implementation="eager")
    if "slender" in method:  # COST-EFF: counted at its width target (h heads, f neurons, rank r in every layer)
        from ..model import count_params
        from ..slender.presets import resolve_target, target_shape
        from ..slender.prune import apply_shape

        target = resolve_target(method["slender"], backbone, args.method)
        apply_shape(model, target_shape(target, depth), "the width target")
        print(f"width target: {target}; encoder (embeddings + blocks): "
              f"{count_params(model.backbone.model.embeddings) + count_params(model.backbone.blocks):,d} parameters")
    summary = cost_summary(model)
    convs = ["paper", "full"] if args.convention == "both" else [args.convention]
    if args.json:
        from ..io import write_json

        write_json(args.json, summary)
    print(f"{args.method} on {args.backbone}, {args.num_classes} classes, input {summary['macs_config']['input_shape']}"
          f" (fvcore, eager attention, batch 1)")
    header = f"{'component':>10s} {'layer':>5s} {'params':>12s} " + " ".join(f"{'GMACs ' + c:>12s}" for c in convs)
    print(header)
    layers = {f"head{i + 1}": p for i, p in enumerate(summary["row_layers"][:-1])}
    for comp, c in summary["components"].items():
        print(f"{comp:>10s} {str(layers.get(comp, '')):>5s} {c['params']:>12,d} "
              + " ".join(f"{c['macs'][v] / 1e9:>12.4f}" for v in convs))
    p = summary["params"]
    print(f"params: total {p['total']:,d} = backbone {p['backbone']:,d} (incl. {p['unused']:,d} unused, e.g. the HF "
          f"pooler) + heads {p['heads']:,d}")
    for v in convs:
        m = summary["macs"][v]
        print(f"MACs [{v}]: backbone {m['backbone'] / 1e9:.2f} G, all heads {m['heads'] / 1e9:.4f} G, "
              f"full model with every exit {(m['backbone'] + m['heads']) / 1e9:.2f} G")


def add_costs(sub) -> None:
    s = sub.add_parser("costs", help="params and MACs per component of a method on a backbone (fvcore, random init)")
    s.add_argument("--backbone", required=True, help="backbone preset, e.g. vit_lgvit_v0, deit_b, vit_b16")
    s.add_argument("--method", required=True, help="method recipe, e.g. lgvit, mlp_normal, backbone")
    s.add_argument("--num-classes", type=int, required=True)
    s.add_argument("--convention", choices=["paper", "full", "both"], default="both",
                   help="paper = Linear+Conv MACs only (the LGViT tables); full = every op, eager attention")
    s.add_argument("--image-size", type=int, help="override the preset's input size")
    s.add_argument("--heads", help="put this head type at every exit of the method (Table 3: mlp, conv, attention)")
    s.add_argument("--positions", help="comma-separated exit blocks, overriding the recipe's (e.g. 4,6,8,10)")
    s.add_argument("--slender", type=json_arg,
                   help='a width-pruned method\'s target, e.g. \'{"preset": "8x"}\' (COST-EFF; default: its recipe\'s)')
    s.add_argument("--json", help="also write the full cost summary to this JSON file")
    s.set_defaults(func=cmd_costs)


def write_costs(dataset: dict, backbone: dict, method: dict, out: str, checkpoint: str | None = None) -> None:
    """Per-component params and MACs of one architecture (random init, eager attention) → JSON. A width-pruned method
    (COST-EFF) is counted on its trained ``checkpoint``, rebuilt at the shape it records, plus its FLOPs as the
    official code counts them (torch.profiler, padded 128-token inputs)."""
    from ..build import build_model, load_model
    from ..data import num_classes_of
    from ..io import write_json
    from ..measure.macs import cost_summary
    from ..provenance import provenance

    if checkpoint:
        from ..slender.presets import check_reached

        model = load_model(checkpoint, attn_implementation="eager")
        shape = check_reached(model, method, checkpoint)
    else:
        model = build_model(backbone, method, num_classes_of(dataset), pretrained=False, attn_implementation="eager")
        shape = None
    summary = cost_summary(model, seq_length=int(dataset.get("max_seq_length", 128)))  # text: the padded convention
    from ..measure.macs import is_text

    if shape is not None:
        summary["slender_shape"] = shape
    if is_text(model):  # COST-EFF's own FLOPs count, for every text method (its ratios are against the backbone's)
        from ..measure.profiler_flops import profiler_flops

        summary["profiler_flops"] = profiler_flops(model, int(dataset.get("max_seq_length", 128)))
    summary["provenance"] = provenance(**({"checkpoint": checkpoint} if checkpoint else {}))
    write_json(out, summary)


def cmd_measure_costs(args) -> None:
    job = json_arg(args.spec)
    write_costs(job["dataset"], job["backbone"], job["method"], args.out)


def add_measure_costs(sub) -> None:
    s = sub.add_parser("measure-costs", help="(DAG step) per-component params and MACs of a run's method → JSON")
    s.add_argument("--spec", required=True, help="job spec JSON (backbone, dataset, method)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_measure_costs)


def cmd_run_costs(args) -> None:
    from ..plan import costs_path

    spec = json_arg(args.spec)  # {run, items: [{dataset, backbone, method}]}: architectures only, not training
    for item in spec["items"]:
        out = costs_path(spec["run"], item["method"]["name"])
        write_costs(item["dataset"], item["backbone"], item["method"], out, item.get("checkpoint"))
        print(f"costs of {item['method']['name']}: {out}", flush=True)


def add_run_costs(sub) -> None:
    s = sub.add_parser("run-costs", help="(DAG step) costs of every distinct architecture of a run → JSON files")
    s.add_argument("--spec", required=True, help='{"run": RUN, "items": [{"dataset", "backbone", "method"}]}')
    s.set_defaults(func=cmd_run_costs)
