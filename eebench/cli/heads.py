"""A new exit head: scaffold its files (`new-head`) and check it on tiny backbones (`check-head`)."""
from __future__ import annotations


def cmd_new_head(args) -> None:
    from ..leaderboard.scaffold import new_head

    for f in new_head(args.name, args.dir):
        print(f"wrote {f}")
    print(f"next: eebench check-head {args.name} --plugin {args.dir}/{args.name}.py")


def add_new_head(sub) -> None:
    s = sub.add_parser("new-head", help="scaffold a head file, its recipe stanza and a test")
    s.add_argument("name")
    s.add_argument("--dir", default="my_heads", help="where to write NAME.py, NAME.yaml, test_NAME.py")
    s.set_defaults(func=cmd_new_head)


def cmd_check_head(args) -> None:
    from ..leaderboard.headcheck import check_head
    from ..plugins import load_plugin_files

    load_plugin_files(args.plugin)
    check_head(args.name)


def add_check_head(sub) -> None:
    s = sub.add_parser("check-head", help="build a head on tiny ViT/DeiT/Swin: shapes, backward, determinism, MACs")
    s.add_argument("name")
    s.add_argument("--plugin", action="append", default=[], help="a head file to import first (repeatable)")
    s.set_defaults(func=cmd_check_head)
