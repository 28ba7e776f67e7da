"""Emulators of the services glimpse-agent talks to (Glimpse, Glif, ViewComfy, Langflow,
Hugging Face inference, OpenAI). Real HTTP apps, shared by the tests and by the
``sandbox``/``simulate`` commands. They enforce the documented rules, not just answer yes.

- ``glimpse/``, ``images/``, ``langflow/``, ``openai_chat``: one emulator each;
- ``server`` (a starlette app on a loopback port, in a thread), ``stack`` (all of them at once),
  ``toml_writer`` (the one ``agent.toml`` writer), and small shared pieces (``multipart``,
  ``release``, ``openai_errors``).

May import: ``glimpse`` (models), ``imaging`` (ViewComfy's parameter names), ``clock``, starlette
and uvicorn. Never the agent, the runner or the commands; only the ``sandbox``/``simulate``
commands and the tests import it.
"""
