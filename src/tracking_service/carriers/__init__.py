"""Carrier adapters behind one protocol, and the normalized status vocabulary."""
