"""Tests of survey_service's core (see tests/README.md)."""
