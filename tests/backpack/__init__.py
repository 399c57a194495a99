"""Tests of the sans-I/O Backpack protocol core."""
