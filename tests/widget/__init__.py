"""Tests of survey_service's widget (see tests/README.md)."""
