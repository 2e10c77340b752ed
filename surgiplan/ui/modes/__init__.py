"""Whole-window modes: plan review (read-only sign-off) and training."""
