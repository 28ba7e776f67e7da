from __future__ import annotations

import argparse

from glimpse_agent.commands._onboarding import store_key, target
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.redaction import register_secret


async def main(args: argparse.Namespace) -> int:
    where = target(args)
    if where.key_file.exists():
        print(f"glimpse-agent: {where.key_file} already holds a key; move it away to register "
              "a new agent")
        return 1
    async with GlimpseClient(where.base_url) as client:
        registration = await client.register(args.name, args.email)
    register_secret(registration.api_key)
    store_key(where.key_file, registration.api_key)
    print(f"Registered agent {args.name!r} (id {registration.agent_id}) on {where.base_url}.")
    print(f"Its API key is saved in {where.key_file} (mode 0600); it is not shown again.")
    print(f"Next: find the 6-digit code sent to {args.email} and run "
          "`glimpse-agent verify --code NNNNNN" + (f" -c {args.config}`" if args.config else "`"))
    return 0
