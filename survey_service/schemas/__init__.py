"""Marshmallow In/Out schemas, one module per feature: the shape of every request and answer, nothing more.

common (bounds, field types, validators, origin filters, the error shape), people, responses, followups,
alerts, reports, exports, lifecycle (events, triggers, survey requests, enrolments), projects, email.
Import from the feature's module; this package re-exports nothing.
"""
