"""Delivery promises with honest confidence, order tracking and delay warnings."""

__version__ = "0.1.0"
