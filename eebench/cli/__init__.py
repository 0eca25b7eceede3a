"""The eebench command line, one module per command group; ``main`` runs a command, ``build_parser`` describes them.

``python -m eebench.cli`` and the ``eebench`` console script both run ``main``.
"""
from .app import main
from .parser import build_parser

__all__ = ["build_parser", "main"]
