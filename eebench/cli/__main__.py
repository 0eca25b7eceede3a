"""``python -m eebench.cli``: what the training ranks under torchrun and many tests run."""
import sys

from .app import main

sys.exit(main())
