"""Tests of survey_service's api (see tests/README.md)."""
