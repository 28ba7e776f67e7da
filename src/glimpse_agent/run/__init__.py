"""Running a persona: assembling its parts from the config, and driving them in time.

- ``assemble``   — ``open_runtime``: the HTTP client, Glimpse client, ledger (with its lock),
  image router, writers and the ``Agent``, opened and closed together;
- ``daemon``     — ``Daemon``: APScheduler, signals, systemd notifications, the watchdog;
- ``deadlines``  — how long each kind of daemon job may run, from the config's timeouts;
- ``simulation`` — ``Simulation``: the same agents on a simulated clock, event to event;
- ``fleet``      — ``Fleet``: many personas in one process, one ``Daemon`` each, one shared
  HTTP client, paused, resumed and reloaded one by one (``fleet_configs``: which files, and
  the clashes a fleet refuses; ``fleet_control``: the 0600 unix socket ``fleet …`` talks to).

May import every room below it (agent, planner, ledger, glimpse, imaging, writing, config, http).
Imported only by the commands and the tests. Never imports ``sandbox``.
"""
