"""Tests of survey_service's reporting (see tests/README.md)."""
