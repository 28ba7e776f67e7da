"""The Langflow emulator: the run, upload and flow-list endpoints of a Langflow server
(``app``), its flows and uploads (``state``), and a small caption model (``model``)."""
