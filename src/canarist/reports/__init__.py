"""Reports: pure functions of a stored experiment."""
