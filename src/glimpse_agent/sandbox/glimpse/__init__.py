"""The Glimpse emulator: an ASGI app (``app``) over an in-memory world (``state``, ``world``,
``population``) that enforces the documented limits (``limits``), answers with the documented
error shapes, and can be told to fail (``faults``). ``testing`` holds helpers for tests.

May import: ``glimpse`` (its models), ``clock``, the sandbox's shared pieces, starlette.
"""
