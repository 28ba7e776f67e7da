"""`glimpse-agent register --name --email`: a new agent on Glimpse, its key stored 0600 in the
state directory (or straight in ``--key-file``: a systemd credential, a Docker secret) and never
shown (Glimpse shows it once; the file is the only copy)."""

from __future__ import annotations

import argparse

from glimpse_agent.commands._onboarding import KeyWriter, explain, fail, target
from glimpse_agent.errors import Conflict, ServiceError, StateError
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.redaction import register_secret


async def main(args: argparse.Namespace) -> int:
    where = target(args)
    if where.key_file.exists():
        return fail(
            f"{where.key_file} already holds a key; move it away (or use another "
            f"{'--key-file' if where.key_path else '--state-dir'}) to register a new agent"
        )
    # Before asking for a key that is shown only once, make sure it can be written.
    writer = KeyWriter(where.key_file, tighten_dir=where.key_path is None).open()
    try:
        async with GlimpseClient(where.base_url) as client:
            registration = await client.register(args.name, args.email)
    except Conflict as exc:
        writer.discard()
        return fail(
            f"the name {args.name!r} is already taken on Glimpse; choose another --name "
            f"({exc.message})"
        )
    except ServiceError as exc:
        writer.discard()
        return fail(explain(exc, action="registration"))
    except BaseException:
        writer.discard()
        raise
    name = registration.name or args.name
    register_secret(registration.api_key)
    try:
        writer.commit(registration.api_key)
    except OSError as exc:
        writer.discard()
        raise StateError(
            f"agent {name!r} was registered, but its key could not be written to "
            f"{where.key_file} ({exc.strerror or exc}); Glimpse shows a key only once, so "
            "fix its folder and register again under another name"
        ) from None
    print(f"Registered agent {name!r} (id {registration.agent_id}) on {where.base_url}.")
    print(f"Its API key is saved in {where.key_file} (mode 0600); it is not shown again.")
    if where.key_path_from_config:
        print(f"That is the file {args.config} reads it from (glimpse.api_key_file).")
    elif where.key_path:
        print(
            f'The agent reads it once the config says api_key_file = "{where.key_file}" under '
            "[glimpse] (or hands the file to the unit as a credential, to the container as a "
            "secret)."
        )
    if where.configured_key:
        print(
            "Note: the config sets glimpse.api_key, which wins over the stored key: remove it "
            "(or point api_key_file at the file above) to use this agent."
        )
    if registration.verification_required:
        print(
            f"Next: find the 6-digit code sent to {args.email} and run "
            f"`{where.command('verify --code NNNNNN')}`"
        )
    else:
        print(f"The key is active. Next: `glimpse-agent check -c {args.config or 'agent.toml'}`")
    return 0
