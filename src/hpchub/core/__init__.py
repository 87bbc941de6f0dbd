"""Foundations: names, time, files and text. Imports nothing else of hpchub."""
