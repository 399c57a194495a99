"""Supervised trio actor engine for Backpack Exchange."""

__version__ = "0.1.0"

__all__ = ["__version__"]
