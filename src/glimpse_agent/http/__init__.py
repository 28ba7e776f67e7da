"""The one HTTP boundary: every adapter's request to a remote service is sent, and every failure
of it translated into our errors, here.

- ``safe`` — sending: redirects followed only within the same origin (credentials never go to
  another host), bodies read with a size cap, every request (its streamed body too) ended
  within a whole-request deadline;
- ``bodies`` — JSON parsed with a depth limit;
- ``errors`` — the one translation of ``httpx`` transport failures and of HTTP statuses into
  ``glimpse_agent.errors`` (adapters keep only their service's body shapes and hints);
- ``retry_after`` — the one reader of ``Retry-After`` and of reset instants, clamped to a
  sane maximum whatever the server sends.

SDK-based adapters (Hugging Face, OpenAI) cannot send through ``safe``; they still build their
errors with ``errors`` and read ``Retry-After`` with ``retry_after``.

May import: ``errors``, ``redaction``, ``logs``, ``clock``, and ``httpx``. Never the agent, the
commands, the ledger, the planner or the sandbox.
"""
