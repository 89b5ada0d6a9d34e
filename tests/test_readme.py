"""The README's SDK example runs as written, against the sandbox: the README stays true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.conftest import Sandbox

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_sdk_example_runs(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    found = re.search(r"## The SDK\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert found, "the README lost its SDK example"
    monkeypatch.setenv("SENDOSO_BASE_URL", sandbox.url)
    monkeypatch.setenv("SENDOSO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", sandbox.client_secret)
    exec(compile(found.group(1), str(README), "exec"), {})  # noqa: S102 - our own README
    (sent,) = sandbox.sends()
    assert sent["request_body"]["send"]["metadata"]["campaign_id"] == "q4-thanks"
