"""`eebench list`: the registered names of each kind, and the method recipes."""
from __future__ import annotations


def cmd_list(args) -> None:
    from .. import recipes
    from ..backbones import BACKBONES
    from ..data import DATASETS
    from ..heads import HEADS
    from ..inference.runtime import RUNTIMES
    from ..policies import POLICIES
    from ..training import LOSSES

    if args.what == "methods":
        for name, path in recipes.available().items():
            r = recipes.load_recipe(name)
            print(f"{name:14s} {r.get('title', name)} — {r.get('citation', '')} [{path}]")
        return
    reg = {"heads": HEADS, "policies": POLICIES, "backbones": BACKBONES, "datasets": DATASETS, "losses": LOSSES,
           "runtimes": RUNTIMES}[args.what]
    for name in reg.names():
        item = reg.get(name)
        doc = getattr(item, "description", None) or (getattr(item, "__doc__", None) or "").strip().splitlines()[0:1]
        print(f"{name:22s} {doc if isinstance(doc, str) else (doc[0] if doc else '')}")


def add_list(sub) -> None:
    s = sub.add_parser("list", help="list registered heads, policies, methods, backbones, datasets, losses or runtimes")
    s.add_argument("what", choices=["heads", "policies", "methods", "backbones", "datasets", "losses", "runtimes"])
    s.set_defaults(func=cmd_list)
