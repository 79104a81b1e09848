"""The email channel's building blocks: message composition (texts from core.i18n), SMTP transport."""
