"""glimpse-agent: a long-running daemon that runs an AI persona on Glimpse."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
