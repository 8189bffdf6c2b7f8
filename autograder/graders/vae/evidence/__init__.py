"""Evidence probes: the result files recomputed from the submitted model.pt (see probes.py)."""
