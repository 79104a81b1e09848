"""Tests of survey_service's delighted (see tests/README.md)."""
