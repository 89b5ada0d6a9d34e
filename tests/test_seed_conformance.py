"""The seed's own HTTP requests, sent verbatim with curl to the sandbox in its own process
(the server ``sendoso sandbox serve`` runs).

This is the contract a user reads: if these pass, the sandbox behaves as the seed says.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from sendoso.sandbox import SandboxConfig, SandboxProcess

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

# Verbatim from the seed, with its {{placeholders}} filled in.
TOKEN_BODY = """{
  "grant_type": "client_credentials",
  "client_id": "{{SENDOSO_CLIENT_ID}}",
  "client_secret": "{{SENDOSO_CLIENT_SECRET}}"
}"""

SEND_BODY = """{
  "send": {
    "gift_id": "{{gift_id}}",
    "first_name": "{{first_name}}",
    "last_name": "{{last_name}}",
    "email": "{{email}}",
    "company": "{{company}}",
    "title": "{{title}}",
    "address": {
      "line1": "{{address_line1}}",
      "line2": "{{address_line2}}",
      "city": "{{city}}",
      "state": "{{state}}",
      "postal_code": "{{zip}}",
      "country": "{{country_code}}"
    },
    "message": "{{personalized_note}}",
    "variant_id": "{{variant_id}}",
    "team_id": "{{team_id}}",
    "metadata": {
      "campaign_id": "{{campaign_id}}",
      "contact_id": "{{contact_id}}"
    }
  }
}"""


def fill(template: str, **values: str) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """The sandbox in its own process on a free port, unlimited; yields its URL."""
    with SandboxProcess(SandboxConfig(rate_limit=None)) as process:
        yield process.url


def curl(*args: str) -> tuple[int, dict[str, str], object]:
    """Runs curl; returns the status, the headers (lower-cased) and the JSON body."""
    result = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.split("\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, json.loads(body) if body.strip() else None


def token(url: str) -> str:
    status, headers, body = curl(
        "-X", "POST", f"{url}/oauth/token",
        "-H", "Content-Type: application/json",
        "-d", fill(TOKEN_BODY, SENDOSO_CLIENT_ID="sandbox-client",
                   SENDOSO_CLIENT_SECRET="sandbox-secret"),
    )  # fmt: skip
    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert isinstance(body, dict)
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] == 7200  # the seed: tokens expire after 2 hours
    return str(body["access_token"])


def swag_with_variant(url: str, access_token: str) -> tuple[str, str]:
    status, _, body = curl(
        f"{url}/api/v3/gifts?category=swag", "-H", f"Authorization: Bearer {access_token}"
    )
    assert status == 200
    assert isinstance(body, dict)
    gift = next(
        g
        for g in body["gifts"]
        if any(v["in_stock"] for v in g["variants"]) and "US" in (g["ships_to"] or ["US"])
    )
    return gift["id"], next(v["id"] for v in gift["variants"] if v["in_stock"])


def send_body(gift_id: str, variant_id: str, **overrides: str) -> str:
    values = {
        "gift_id": gift_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "company": "Analytical Engines",
        "title": "Countess",
        "address_line1": "1 Main St",
        "address_line2": "Suite 5",
        "city": "Springfield",
        "state": "IL",
        "zip": "62701",
        "country_code": "US",
        "personalized_note": "Thank you for your time!",
        "variant_id": variant_id,
        "team_id": "team_1",
        "campaign_id": "q4",
        "contact_id": "003XYZ",
    }
    values.update(overrides)
    return fill(SEND_BODY, **values)


def post_send(url: str, access_token: str, body: str) -> tuple[int, dict[str, str], object]:
    return curl(
        "-X", "POST", f"{url}/api/v3/sends",
        "-H", f"Authorization: Bearer {access_token}",
        "-H", "Content-Type: application/json",
        "-d", body,
    )  # fmt: skip


def test_token_catalog_send_and_status_as_the_seed_shows(served: str) -> None:
    access_token = token(served)
    status, _, catalog = curl(
        f"{served}/api/v3/gifts", "-H", f"Authorization: Bearer {access_token}"
    )
    assert status == 200
    assert isinstance(catalog, dict)
    assert catalog["gifts"]
    gift_id, variant_id = swag_with_variant(served, access_token)

    status, headers, created = post_send(served, access_token, send_body(gift_id, variant_id))
    assert status == 201, created
    assert isinstance(created, dict)
    send = created["send"]
    assert send["status"] == "pending"
    assert headers["x-request-id"]

    status, _, fetched = curl(
        f"{served}/api/v3/sends/{send['id']}", "-H", f"Authorization: Bearer {access_token}"
    )
    assert status == 200
    assert isinstance(fetched, dict)
    assert fetched["send"]["status"] in {
        "pending", "processing", "shipped", "delivered", "failed", "returned"
    }  # fmt: skip


def test_every_row_of_the_seed_error_table(served: str) -> None:
    access_token = token(served)
    gift_id, variant_id = swag_with_variant(served, access_token)

    # 400: invalid address or missing required field
    status, _, body = post_send(served, access_token, send_body(gift_id, variant_id, zip=""))
    assert status == 400
    assert isinstance(body, dict)
    assert [d["field"] for d in body["error"]["details"]] == ["address.postal_code"]

    # 401: token expired (or never valid)
    status, headers, body = post_send(served, "expired", send_body(gift_id, variant_id))
    assert status == 401
    assert "bearer" in headers["www-authenticate"].lower()

    # 404: gift id not found
    status, _, body = post_send(served, access_token, send_body("gft_gone", variant_id))
    assert status == 404

    # 422: unprocessable, e.g. an invalid email
    status, _, body = post_send(
        served, access_token, send_body(gift_id, variant_id, email="ada@example.invalid")
    )
    assert status == 422
    assert isinstance(body, dict)
    assert body["error"]["details"][0]["field"] == "email"

    # 429: rate limited, with Retry-After. One request per 100 s: the second is limited
    # however long each curl takes to start on a busy machine.
    status, _, _ = curl("-X", "POST", f"{served}/_sandbox/faults", "-H",
                        "Content-Type: application/json", "-d", '{"rate_limit": 0.01}')  # fmt: skip
    assert status == 200
    statuses = []
    retry_after = None
    for _ in range(5):
        status, headers, _ = curl(
            f"{served}/api/v3/gifts", "-H", f"Authorization: Bearer {access_token}"
        )
        statuses.append(status)
        retry_after = headers.get("retry-after", retry_after)
    curl("-X", "POST", f"{served}/_sandbox/reset")
    assert 429 in statuses
    assert retry_after is not None
    assert int(retry_after) >= 1
