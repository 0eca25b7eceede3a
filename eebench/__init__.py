"""eebench: a reproducibility benchmark suite for early-exit transformers."""
__version__ = "0.1.0"

import time as _time

IMPORTED_AT = _time.time()  # when /proc is unavailable, job startup is counted from here
