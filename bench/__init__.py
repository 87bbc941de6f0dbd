"""hpchub's benchmarks against batchspawner, run on a named testbed with `bench/run`."""
