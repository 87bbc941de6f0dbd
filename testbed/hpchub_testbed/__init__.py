"""`hpchub-testbed`: turn this machine into a real one-node cluster with a running hub (a development tool, outside the hpchub package)."""
