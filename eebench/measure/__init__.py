"""Costs of a multi-exit model: per-component params and MACs (fvcore), speed-ups, expected MACs, latency."""
