"""One module per CLI command, each exposing ``main(args) -> int | Awaitable[int]``; ``cli``
imports a command's module only when that command runs, so ``--help`` stays light.

May import every room. Only ``sandbox`` (and ``simulate``) may import the emulators.
"""
