"""The email channel's building blocks: localised strings, message composition, SMTP transport."""
