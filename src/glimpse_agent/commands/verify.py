from __future__ import annotations

import argparse

from glimpse_agent.commands._onboarding import target
from glimpse_agent.glimpse import GlimpseClient


async def main(args: argparse.Namespace) -> int:
    where = target(args)
    key = where.stored_key()
    if not key:
        print(f"glimpse-agent: no key in the config nor in {where.key_file}; run "
              "`glimpse-agent register` first")
        return 1
    code = args.code.strip()
    if not (len(code) == 6 and code.isdigit()):
        print("glimpse-agent: --code must be the 6-digit code from the e-mail")
        return 2
    async with GlimpseClient(where.base_url, key) as client:
        await client.verify(code)
    print("Verified: the key is active. Next: glimpse-agent check -c agent.toml")
    return 0
