"""Faust agents: the live path."""
