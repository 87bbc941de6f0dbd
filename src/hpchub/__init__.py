"""hpchub: JupyterHub as the front door to an existing HPC cluster."""

__version__ = "0.1.0"
