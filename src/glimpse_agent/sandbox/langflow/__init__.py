"""The Langflow emulator: the run, upload and flow-list endpoints of a Langflow server
(``app``), its flows and uploads (``state``), and a small caption model (``model``).

May import: the sandbox's shared pieces and starlette; nothing of the agent's.
"""
