from __future__ import annotations

import argparse

from glimpse_agent.commands._common import load


async def main(args: argparse.Namespace) -> int:
    load(args)
    return 1
