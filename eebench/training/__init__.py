"""Training schemes as stages of one shared loop; losses are registered by name (``eebench list losses``)."""
from .losses import LOSSES, build_loss  # noqa: F401
from . import distill_costeff  # noqa: F401  (registration)
