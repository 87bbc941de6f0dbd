"""The hub side of a Slurm-backed server: spawner, job monitor, port callback."""
