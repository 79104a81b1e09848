"""The test suite: one folder per package of survey_service, shared helpers in tests.support (README.md)."""
