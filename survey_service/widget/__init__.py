"""The in-app widget: its browser-facing views, eligibility, identify, answers and texts."""
