"""The engine's actors: the I/O edge of the engine, one ``run_<name>`` entry point per module.

Each module owns one actor (``status``, ``metrics``, ``notifier``, ``journal``, ...): a plain ``async def``
that takes its config section and its channel ends or ``LatestValue`` holders, signals readiness through
``task_status`` and runs until cancelled. Import the modules themselves; this package re-exports nothing.
"""

__all__: list[str] = []
