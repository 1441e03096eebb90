"""Offline training and evaluation data for the injection classifier (not imported at serving time)."""
