from __future__ import annotations

import argparse

from glimpse_agent.imaging.backends.viewcomfy_params import main as params_main


def main(args: argparse.Namespace) -> int:
    return params_main([args.workflow])
