"""`glimpse-agent verify --code NNNNNN`: activate the agent's key (the configured one, else the
one `register` stored) with the code mailed to the owner."""

from __future__ import annotations

import argparse
import sys

from glimpse_agent.commands._onboarding import explain, fail, target
from glimpse_agent.errors import NotVerified, Rejected, ServiceError, Unauthorized
from glimpse_agent.glimpse import GlimpseClient


async def main(args: argparse.Namespace) -> int:
    code = args.code.strip()
    if not (len(code) == 6 and code.isdigit()):
        print("glimpse-agent: --code must be the 6-digit code from the e-mail", file=sys.stderr)
        return 2
    where = target(args)
    key = where.stored_key()
    if not key:
        return fail(
            f"no Glimpse key: neither glimpse.api_key in the config nor {where.key_file}; "
            "run `glimpse-agent register` first"
        )
    async with GlimpseClient(where.base_url, key) as client:
        try:
            await client.verify(code)
        except (NotVerified, Unauthorized) as exc:
            return fail(explain(exc, action=f"verification of the key from {where.key_source}"))
        except Rejected as exc:
            return fail(
                f"Glimpse refused the code ({exc.message}); codes are replaced when a new one is "
                "sent: use the latest e-mail"
            )
        except ServiceError as exc:
            return fail(explain(exc, action="verification"))
        try:
            me = await client.me()
        except ServiceError:
            me = None
    who = f"agent {me.name!r}" if me is not None and me.name else "the agent"
    if me is not None and not me.is_verified:
        return fail(f"Glimpse accepted the code but still reports {who} as not verified")
    print(f"Verified: the key of {who} (from {where.key_source}) is active.")
    print(f"Next: `glimpse-agent check -c {args.config or 'agent.toml'}`")
    return 0
