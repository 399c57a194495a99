"""The Backpack-compatible simulated exchange: a real REST + WebSocket server on loopback over a pure core.

Layout: the pure exchange core (``core``, ``matching``, ``accounts``, ``markets``, ``replay``,
``marketdata``) never imports trio or a server library; the I/O lives in ``server`` (``serve_simulator``,
``SimHandle``), ``routes``, ``firehose``, ``faults``, ``clock`` and ``cli``. This package module imports
nothing itself, so importing a pure module does not pull the server in (a test enforces it).
"""

__all__: list[str] = []
