"""Tests of survey_service's services (see tests/README.md)."""
