"""Risk: how much an operation can break, weighed from LuxOS' own data, and the safety checkpoint it earns."""
