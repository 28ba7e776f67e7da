"""What an operator watches, kept per persona runtime (never in module globals: a fleet will
host many personas in one process).

- ``vitals``   — ``Vitals``: since when Glimpse has been unreachable, since when every action
  has failed, what start-up waits for; stamped into the heartbeat file for ``health``;
- ``tallies``  — ``Tallies``: actions by kind and outcome, image backend attempts, failures,
  latency and spend, Glimpse requests — plain counters, no Prometheus needed to keep them;
- ``observe``  — where the tallies are fed from: an ``httpx.AsyncClient`` that sees every
  request to Glimpse, and a wrapper around each image backend;
- ``metrics``  — the Prometheus collector over one or more personas' feeds (``prometheus_client``
  is imported only when a listener serves it);
- ``listener`` — the optional ``[ops] listen`` server: ``/healthz`` and ``/metrics``.
- ``fleet_health`` — the verdict on a fleet (its loop, and each persona's own verdict), for
  ``glimpse-agent fleet health`` and a fleet's ``/healthz``.

May import the rooms below ``run``: agent (the ``Outcome``), imaging, ledger, config, health,
notify. Imported by ``run`` and the commands.
"""
