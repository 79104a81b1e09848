"""Pure modules and infrastructure helpers: NPS arithmetic, instants, tokens, keys, limits, headers."""
