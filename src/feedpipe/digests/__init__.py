"""Digests: subscribers, and the pure planner deciding who gets which posts when."""
