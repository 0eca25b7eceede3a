"""eebench: a reproducibility benchmark suite for early-exit transformers."""
__version__ = "0.1.0"
