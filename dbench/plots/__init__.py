"""Plots a person would rather look at than a table (matplotlib, imported lazily, Agg backend)."""
