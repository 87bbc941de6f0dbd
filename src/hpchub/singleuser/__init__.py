"""What runs inside the user's Slurm job, before and around jupyterhub-singleuser."""
