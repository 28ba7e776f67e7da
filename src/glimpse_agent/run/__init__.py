"""Running a persona: assembling its parts from the config, and driving them in time.

- ``assemble``   — ``open_runtime``: the HTTP client, Glimpse client, ledger (with its lock),
  image router, writers and the ``Agent``, opened and closed together;
- ``daemon``     — ``Daemon``: APScheduler, signals, systemd notifications, the watchdog;
- ``deadlines``  — how long each kind of daemon job may run, from the config's timeouts;
- ``simulation`` — ``Simulation``: the same agents on a simulated clock, event to event.

May import every room below it (agent, planner, ledger, glimpse, imaging, writing, config, http).
Imported only by the commands and the tests. Never imports ``sandbox``.
"""
