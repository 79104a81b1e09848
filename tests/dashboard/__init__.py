"""Tests of survey_service's dashboard (see tests/README.md)."""
