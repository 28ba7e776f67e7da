"""``multipart/form-data`` bodies as the emulators read them: text fields and file parts, parsed
with the standard library's e-mail parser (python-multipart is not a dependency of ours)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP


def parse_multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """``(fields, files)`` of a multipart body: a part with a filename is a file (bytes), any
    other part a text field (UTF-8; a stray byte becomes U+FFFD rather than a 500). Parts
    without a name are skipped."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None:
            files[name] = payload
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, files
