"""Emulators of the services glimpse-agent talks to (Glimpse, Glif, ViewComfy, Langflow,
Hugging Face inference, OpenAI). Real HTTP apps, shared by the tests and by the
``sandbox``/``simulate`` commands. They enforce the documented rules, not just answer yes."""
