"""Dreams: a plan run in isolation, its changes kept as a timeline of its own (``dream_<id>``)."""
