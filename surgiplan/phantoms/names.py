"""The names of the generated phantoms (light: no phantom code is imported)."""

PHANTOM_NAMES = ("head", "spine", "liver")
