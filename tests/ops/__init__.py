"""Tests of the running service as an operator sees it: CLI, processes, packaging, chaos, bench."""
