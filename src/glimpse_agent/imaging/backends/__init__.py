"""One module per image backend, each behind ``imaging.base.ImageBackend``: Glif (Simple API),
ViewComfy, Glimpse's BYOK generator, Hugging Face (``huggingface_hub``), OpenAI images
(``openai``) and the offline ``local`` painter. The SDKs are imported lazily, on first use.

May import: ``imaging.base``/``costs``/``progress``, ``http``, ``errors``, ``config``,
``redaction``, ``logs``, ``clock``, and ``glimpse`` (the BYOK generator only).
"""
