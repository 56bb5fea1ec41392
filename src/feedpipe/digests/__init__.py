"""Digests: the pure planner deciding who is due and which posts each edition holds."""
