"""Event sources: provider webhooks (Segment, Stripe, Zendesk, …) turned into lifecycle events and people.

views (the public receiver) → service (settings, receive) → kinds → one module per provider → base.
The settings API (secret key) is api/sources; the dashboard's page reads through service.
"""
