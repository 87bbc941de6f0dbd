"""Prometheus metrics: hpchub's own, in JupyterHub's registry, and who may read them."""
