"""Prompt-injection / jailbreak detection: a hashed n-gram logistic model + cheap heuristics,
scored per segment so a long benign prompt cannot hide an injected paragraph."""
