"""Encode-once evaluation: plan every metric's observations, encode each unique one once, score."""
