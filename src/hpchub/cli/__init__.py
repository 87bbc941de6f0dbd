"""The `hpchub` command line."""
