"""The one HTTP boundary: every adapter's request to a remote service goes through here.

- ``safe`` — sending: redirects followed only within the same origin (credentials never go to
  another host), bodies read with a size cap.

May import: ``errors``, ``redaction``, ``logs``, ``clock``, and ``httpx``. Never the agent, the
commands, the ledger or the planner.
"""
