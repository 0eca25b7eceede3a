"""`eebench export`: an early-exit model as per-segment ONNX graphs and its exit policy."""
from __future__ import annotations

import argparse

from .args import json_arg


def cmd_export(args) -> None:
    from ..export.bundle import export_checkpoint, parse_params

    manifest = export_checkpoint(args.checkpoint, args.out, policy=args.policy, params=parse_params(args.param),
                                 curves=args.curve, plain=args.plain,
                                 operating_point=json_arg(args.operating_point) if args.operating_point else None)
    graphs = len(manifest["order"]) + (1 if manifest["backbone"] else 0)
    print(f"exported {manifest['policy']['name']} {manifest['policy']['params']} with exits after blocks "
          f"{manifest['row_layers'][:-1]} → {args.out} ({graphs} ONNX graphs, opset {manifest['opset']}; exported vs "
          f"eager logits within {manifest['check']['max_abs_logit_diff']:.1e})")
    print(f"run it: python {args.out}/run_early_exit.py --help")


def add_export(sub) -> None:
    s = sub.add_parser("export", help="an early-exit model as per-segment ONNX graphs + its exit policy, runnable with "
                                      "onnxruntime and numpy only",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Write a checkpoint's early-exit model into --out:\n"
                                   "  *.onnx              the embedding, the blocks between consecutive exits, each "
                                   "exit head, the final\n"
                                   "                      classifier (text: attention_mask input, dynamic length; "
                                   "images: fixed size)\n"
                                   "  early_exit.json     exits, graph order, the policy, its parameters and "
                                   "operating point, the exit\n"
                                   "                      rule resolved for the runner, input preprocessing, opset, "
                                   "versions\n"
                                   "  run_early_exit.py   early exit for one input with onnxruntime and numpy only\n"
                                   "Policies the runner checks: deebert_entropy, berxit_entropy, berxit_lte, "
                                   "costeff_entropy,\nlgvit_entropy, lgvit_confidence, lgvit_patience, lgvit_pcee, "
                                   "sdn_confidence, pabee_patience,\npabee_patience_regression, pcee_bert. Needs "
                                   "pip install 'eebench[export]' (onnx, onnxruntime).",
                       epilog="examples:\n"
                              "  eebench export --checkpoint CKPT --policy pabee_patience "
                              "--param patience=2 --out pabee_onnx\n"
                              "  eebench export --checkpoint CKPT --curve results/default/curves/deebert/seed0.csv "
                              "--out deebert_onnx   # Table 1's operating point\n"
                              "  python pabee_onnx/run_early_exit.py --image x.npy")
    s.add_argument("--checkpoint", required=True, help="a checkpoint written by eebench train")
    s.add_argument("--policy", help="exit policy (see `eebench list policies`); optional with --curve")
    s.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="a policy parameter, value as JSON (repeatable), e.g. --param entropy_threshold=0.3")
    s.add_argument("--curve", action="append", default=[], metavar="CSV",
                   help="an operating curve from `eebench curve` (repeat for each seed): export its operating point")
    s.add_argument("--operating-point", metavar="JSON",
                   help='the rule that picks the point on --curve (default {"rule": "max_speedup_within_drop", '
                        '"max_drop": 1.0}; also {"rule": "retention", "retention": 99})')
    s.add_argument("--plain", action="store_true", help="also export the model without exits (backbone.onnx)")
    s.add_argument("--out", required=True, help="folder to write (new, empty, or a previous export)")
    s.set_defaults(func=cmd_export)
