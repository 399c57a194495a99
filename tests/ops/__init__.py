"""Tests of the side actors: status, metrics, notifier, journal, and the notices fan-out."""
