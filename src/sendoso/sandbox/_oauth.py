"""Reading a client's credentials from a token request (RFC 6749 §2.3, §4.4)."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qsl

from sendoso.sandbox._replies import parse_json

__all__ = ["basic_credentials", "hash_token", "token_params"]


def hash_token(token: str) -> str:
    # Only hashes are stored, so a leaked sandbox database leaks no usable token.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def basic_credentials(header: str) -> tuple[tuple[str, str] | None, str | None]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or non-ASCII header text
        return None, "the HTTP Basic credentials are not valid base64 of 'client_id:secret'"
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None, "the HTTP Basic credentials must be 'client_id:client_secret'"
    return (client_id, secret), None


def token_params(content_type: str, raw: bytes) -> tuple[dict[str, str], str | None]:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return {}, "the form body is not valid UTF-8 application/x-www-form-urlencoded"
        params: dict[str, str] = {}
        for name, value in pairs:
            if name in params:
                # RFC 6749 §3.2: request parameters must not be included more than once.
                return {}, f"parameter {name[:40]!r} is repeated"
            params[name] = value
        return params, None
    if not raw.strip():
        return {}, None
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        return {}, (
            f"unsupported Content-Type {media_type[:60]!r}; send application/json or"
            " application/x-www-form-urlencoded"
        )
    body, problem = parse_json(raw)
    if problem:
        return {}, problem
    if not isinstance(body, dict):
        return {}, "the body must be a JSON object"
    for name in ("grant_type", "client_id", "client_secret", "scope"):
        if name in body and not isinstance(body[name], str):
            return {}, f"{name} must be a string"
    return {name: value for name, value in body.items() if isinstance(value, str)}, None
