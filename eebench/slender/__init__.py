"""COST-EFF (EMNLP 2022, spec methods §7): slender multi-exit BERTs — gradient equilibrium, structured width pruning
that serves every exit (heads, FFN neurons, a factorised word embedding), the pruning schedule and its training stage.
"""
