"""Exit heads: one module per head, registered by name (``eebench list heads``)."""
from .base import HEADS, ExitHead, HeadOutput, build_head, register_head  # noqa: F401
from . import attention, conv, gah, glh, linear, lph, mlp, pooled, tanh_cls, vit_ee  # noqa: F401  (registration)
