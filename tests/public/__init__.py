"""Tests of survey_service.public: the index page and the API reference (see tests/README.md)."""
