"""Tests of survey_service's mail (see tests/README.md)."""
