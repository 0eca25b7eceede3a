"""`eebench list`: the registered names of each kind, and the method recipes."""
from __future__ import annotations

# what `eebench list` takes: every registry's kind (its "unknown …" errors name `eebench list KIND`) and the recipes
KINDS = ["heads", "policies", "methods", "backbones", "datasets", "losses", "runtimes", "stage_runners", "shape_hooks"]


def registries() -> dict:
    """Kind → its registry, imported when listed (a registry module imports what registers the built-ins)."""
    from ..backbones import BACKBONES
    from ..checkpoint_shape import SHAPE_HOOKS
    from ..data import DATASETS
    from ..heads import HEADS
    from ..inference.runtime import RUNTIMES
    from ..policies import POLICIES
    from ..training import LOSSES
    from ..training.runners import STAGE_RUNNERS

    return {r.kind: r for r in (HEADS, POLICIES, BACKBONES, DATASETS, LOSSES, RUNTIMES, STAGE_RUNNERS, SHAPE_HOOKS)}


def cmd_list(args) -> None:
    from .. import recipes

    if args.what == "methods":
        for name, path in recipes.available().items():
            r = recipes.load_recipe(name)
            print(f"{name:14s} {r.get('title', name)} — {r.get('citation', '')} [{path}]")
        return
    reg = registries()[args.what]
    for name in reg.names():
        item = reg.get(name)
        doc = getattr(item, "description", None) or (getattr(item, "__doc__", None) or "").strip().splitlines()[0:1]
        print(f"{name:22s} {doc if isinstance(doc, str) else (doc[0] if doc else '')}")


def add_list(sub) -> None:
    s = sub.add_parser("list", help="list registered heads, policies, methods, backbones, datasets, losses, runtimes, "
                                    "stage runners or checkpoint shape hooks")
    s.add_argument("what", choices=KINDS)
    s.set_defaults(func=cmd_list)
