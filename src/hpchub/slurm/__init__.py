"""Everything that speaks to Slurm: command lines, job scripts, output parsers, explanations."""
