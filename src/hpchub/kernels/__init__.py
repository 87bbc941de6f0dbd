"""Kernels from Lmod modules: discovery, rules, kernelspec writer, launcher, test runner."""
