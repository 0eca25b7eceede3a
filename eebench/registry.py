"""One registry type for heads, policies, backbones, datasets and training losses (timm-style)."""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

from .errors import fail

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → factory. Third-party packages extend it through the entry-point group ``eebench.<kind>``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=f"eebench.{self.kind}"):
            ep.load()  # importing the module registers its items

    def get(self, name: str) -> T:
        if name not in self._items:
            self._load_plugins()
        if name not in self._items:
            raise fail(f"unknown {self.singular} {name!r}",
                       f"choose one of: {', '.join(self.names())} (see `eebench list {self.kind}`)")
        return self._items[name]

    @property
    def singular(self) -> str:
        kind = self.kind
        return kind[:-3] + "y" if kind.endswith("ies") else kind[:-1] if kind.endswith("s") else kind

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._items
