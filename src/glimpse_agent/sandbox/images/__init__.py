"""Emulators of the image services: Glif, ViewComfy, Hugging Face inference and OpenAI images,
each a real HTTP app with the service's auth, validation and error shapes, plus shared fault
injection (``faults``) and the pictures they return (``pictures``).

May import: ``imaging`` (ViewComfy's parameter names), the sandbox's shared pieces, starlette
and Pillow.
"""
