"""The flat parameters of a ComfyUI ``workflow_api.json`` as ViewComfy names them:
``"<node>-inputs-<name>"`` for every input, plus ``"_<node>-node-class_type-info"`` labels
(the node's title, else its class) that say what each node is. Labels are never sent.

    glimpse-agent viewcomfy-params workflow_api.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

LABEL_PREFIX = "_"
LABEL_SUFFIX = "-node-class_type-info"
INPUTS = "-inputs-"


def flatten(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``params`` keys for ``workflow`` (node id -> {class_type, inputs, _meta})."""
    flat: dict[str, Any] = {}
    for node_id, node in workflow.items():
        if not isinstance(node, Mapping):
            continue
        meta = node.get("_meta")
        title = meta.get("title") if isinstance(meta, Mapping) else None
        flat[f"{LABEL_PREFIX}{node_id}{LABEL_SUFFIX}"] = title or node.get("class_type")
        inputs = node.get("inputs")
        if isinstance(inputs, Mapping):
            for name, value in inputs.items():
                flat[f"{node_id}{INPUTS}{name}"] = value
    return flat


def is_label(key: str) -> bool:
    return key.startswith(LABEL_PREFIX) and key.endswith(LABEL_SUFFIX)


def split_key(key: str) -> tuple[str, str]:
    """``"6-inputs-text"`` -> ``("6", "text")``; split on the first ``-inputs-``."""
    node, sep, name = key.partition(INPUTS)
    if not sep or not node or not name:
        raise ValueError(f'{key!r} is not a "<node>-inputs-<name>" parameter')
    return node, name


def main(argv: Sequence[str]) -> int:
    """Print the flat parameters of the workflow file ``argv[0]`` as JSON; 2 on bad input."""
    if len(argv) != 1:
        print("usage: glimpse-agent viewcomfy-params workflow_api.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        workflow = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"glimpse-agent: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"glimpse-agent: {path} is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(workflow, dict) or not any(
        isinstance(n, dict) and "class_type" in n for n in workflow.values()
    ):
        print(
            f"glimpse-agent: {path} is not a workflow_api.json (export it from ComfyUI with "
            '"Save (API Format)")',
            file=sys.stderr,
        )
        return 2
    print(json.dumps(flatten(workflow), indent=2, ensure_ascii=False))
    return 0
