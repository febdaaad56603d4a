"""The Trio runtime: owns time and tasks (clock, strategies, runners, the trade engine, the bus)."""
