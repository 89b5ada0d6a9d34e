"""schemathesis against the sandbox's own /openapi.json, over a real socket.

Every generated request, valid or deliberately invalid, must get an answer the document
describes (status code, content type, headers, body schema) and never a 5xx; invalid requests
must be refused and valid ones accepted, bar the refusals listed in ``_SEMANTIC_REFUSALS``.
Authenticated operations get a real bearer token through schemathesis's auth hook, so the
fuzzer reaches the handlers, while its own checks still send each without one. A stateful run
follows the document's links (create a send, then read it back).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.engine.errors import is_inconsistent_replay
from schemathesis.specs.openapi.checks import positive_data_acceptance

from sendoso.sandbox import SandboxConfig, SandboxServer
from sendoso.sandbox._openapi import build_openapi

from .conftest import CLIENT_ID, CLIENT_SECRET

#: Examples per operation, and scenarios for the stateful run: enough to reach every
#: response the document lists, few enough that the module takes seconds.
EXAMPLES = 60
SCENARIOS = 20
#: Seconds per request: schemathesis's 10 s default is too tight on a loaded CI machine.
TIMEOUT = 60
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    # No shrinking: each step is a real request to a server whose state moves on, so a
    # shrink can run for many minutes; the failing example is reported as found.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)

#: The document the sandbox serves (test_the_served_document_is_the_one_fuzzed holds it to
#: that). Loaded at import rather than from the live server because schemathesis's lazy
#: fixture loader does not work with this pytest; requests still go to a real socket.
schema = schemathesis.openapi.from_dict(build_openapi())

#: Stands for the real token until a case runs: schemathesis builds the document's explicit
#: examples, with their auth, at collection time, before any server is up.
_TOKEN_PLACEHOLDER = "conformance-token-placeholder"

#: Refusals a schema-valid request can still get, because the rule depends on data the schema
#: cannot see: the catalog (an address for physical items, variants, countries a gift ships
#: to, unknown gift ids), the recipient (postal codes and states per country, email
#: deliverability, control characters), the order of two filters, or an Idempotency-Key
#: already used with another body. Each must still be the documented error, naming fields.
_SEMANTIC_REFUSALS = {
    "POST /api/v3/sends": {400, 404, 422},
    "GET /api/v3/gifts": {400},
}

_SHAPE_CODES = {"invalid_json", "invalid_type", "unknown_field"}
_REQUIRED = {"send", "gift_id", "first_name", "last_name", "email", "message"}

_VALID_KEY = re.compile(r"[\x20-\x7e]{1,200}")
_KEY_SUFFIX = itertools.count()

#: Statuses answered per operation, fuzzed and stateful runs together.
_SEEN: defaultdict[str, Counter[int]] = defaultdict(Counter)


class _SandboxToken:
    """The auth provider: given to schemathesis rather than set as a header on every request,
    so that it still leaves the header out when it tests that authentication is enforced."""

    def get(self, case: Any, context: Any) -> str:
        return _TOKEN_PLACEHOLDER

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


schema.auth().apply_to(path_regex="^/api/")(_SandboxToken)


@pytest.fixture(scope="module")
def conformance_server() -> Iterator[SandboxServer]:
    # Its own server: the fuzzer creates sends and tokens that no other test should see, and
    # the rate limit is off so every request reaches a handler.
    with SandboxServer(SandboxConfig(rate_limit=None)) as server:
        yield server


@pytest.fixture(scope="module")
def bearer_token(conformance_server: SandboxServer) -> str:
    response = httpx.post(
        conformance_server.url + "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _label(case: Any) -> str:
    return f"{case.method.upper()} {case.path}"


def _use_real_token(case: Any, token: str) -> None:
    if (case.headers or {}).get("Authorization") == f"Bearer {_TOKEN_PLACEHOLDER}":
        case.headers["Authorization"] = f"Bearer {token}"
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _VALID_KEY.fullmatch(key):
        # Generated keys repeat across examples, so most bodies met "key already used with
        # another body" (422) instead of the body's own checks; replays are tested elsewhere.
        case.headers["Idempotency-Key"] = f"{key}-{next(_KEY_SUFFIX)}"


def _validate(case: Any, response: Any, **transport: Any) -> None:
    """schemathesis's checks, with positive_data_acceptance replaced where the API has rules
    the schema cannot express."""
    label = _label(case)
    _SEEN[label][response.status_code] += 1
    if label not in _SEMANTIC_REFUSALS:
        case.validate_response(response, transport_kwargs=transport or None)
        return
    case.validate_response(
        response, excluded_checks=[positive_data_acceptance], transport_kwargs=transport or None
    )
    if not case.meta.generation.mode.is_positive or response.status_code in {401, 409, 429}:
        return  # judged by the checks above: documented, and never a 5xx
    if response.status_code < 400:
        return
    assert response.status_code in _SEMANTIC_REFUSALS[label], (
        f"{label}: schema-valid request refused with {response.status_code}: {response.text}"
    )
    error = response.json()["error"]
    assert error["details"], f"{label}: a refusal must name the fields at fault"
    assert all(d["field"] and d["message"] for d in error["details"])
    if label == "GET /api/v3/gifts":
        # The one rule on the catalog's parameters that the schema cannot express.
        assert [d["message"] for d in error["details"]] == ["max_price is below min_price"]
    else:
        # Shape problems are the schema's business: a request it allows has none of them.
        shape = [
            d
            for d in error["details"]
            if d["code"] in _SHAPE_CODES or (d["code"] == "missing" and d["field"] in _REQUIRED)
        ]
        assert not shape, f"the document allows what the sandbox refuses: {shape}"


def test_the_served_document_is_the_one_fuzzed(conformance_server: SandboxServer) -> None:
    served = httpx.get(conformance_server.url + "/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json() == build_openapi()


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_response_matches_the_document(
    case: Any, bearer_token: str, conformance_server: SandboxServer
) -> None:
    _use_real_token(case, bearer_token)
    url = conformance_server.url
    _validate(case, case.call(base_url=url, timeout=TIMEOUT), base_url=url, timeout=TIMEOUT)


def test_stateful_links_create_then_read_sends(
    bearer_token: str, conformance_server: SandboxServer
) -> None:
    url = conformance_server.url

    class Links(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            _use_real_token(case, bearer_token)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": url, "timeout": TIMEOUT}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            _validate(case, response, **kwargs)

    for fresh in (False, True, True):
        try:
            Links.run(
                settings=settings(
                    FUZZ_SETTINGS,
                    max_examples=SCENARIOS,
                    stateful_step_count=6,
                    derandomize=not fresh,
                )
            )
            break
        except (FlakyStrategyDefinition, AssertionError) as exc:
            # The server's state (new ids, statuses moving on) changed what a replayed scenario
            # drew. Not a failure of the server: schemathesis's own runner starts a fresh
            # session then too. Real failures (FailureGroup, our assertions) propagate.
            if isinstance(exc, AssertionError) and not is_inconsistent_replay(exc):
                raise
            continue
    else:
        pytest.fail("three stateful sessions in a row could not replay consistently")
    # The links were followed: sends were created, and read back by the id in the reply.
    assert _SEEN["POST /api/v3/sends"][201] > 0
    assert _SEEN["GET /api/v3/sends/{send_id}"][200] > 0


def test_fuzzing_got_past_authentication() -> None:
    """Every authenticated operation answered something other than 401, and the token
    endpoint issued tokens: the runs above exercised the handlers, not just the auth check."""
    if not _SEEN:
        pytest.skip("runs only after the fuzzing tests in this module")
    for label in ("GET /api/v3/gifts", "POST /api/v3/sends", "GET /api/v3/sends/{send_id}"):
        past_auth = {status for status in _SEEN[label] if status != 401}
        assert past_auth, f"{label} only ever answered 401"
        assert _SEEN[label][401] > 0, f"{label}: authentication was never tested"
    assert _SEEN["POST /oauth/token"][200] > 0
    assert _SEEN["GET /api/v3/gifts"][200] > 0
    assert not [s for counts in _SEEN.values() for s in counts if s >= 500]


def _send_create_validator() -> Any:
    import jsonschema

    document = build_openapi()
    schemas = document["components"]["schemas"]
    resolver_root = {"components": {"schemas": schemas}, **schemas["SendCreate"]}
    return jsonschema.Draft202012Validator(resolver_root)


@pytest.mark.parametrize(
    ("send", "valid"),
    [
        # Found by schemathesis: the document had every field optional and nullable, and
        # metadata values as strings only, while the sandbox requires five fields and takes
        # numbers and booleans as metadata (stored as strings).
        ({"gift_id": "gft_egift_amazon_us_25"}, False),
        (
            {
                "gift_id": None,
                "first_name": "A",
                "last_name": "B",
                "email": "a@example.com",
                "message": "Hi",
            },
            False,
        ),
        (
            {
                "gift_id": "g",
                "first_name": "A",
                "last_name": "B",
                "email": "a@example.com",
                "message": "Hi",
                "metadata": {"contact_id": 42, "vip": True},
            },
            True,
        ),
        (
            {
                "gift_id": "g",
                "first_name": " ",
                "last_name": "B",
                "email": "a@example.com",
                "message": "Hi",
            },
            False,
        ),
        # Found by the stateful run: U+001D is not whitespace to JSON Schema's `\S` but is
        # trimmed by the sandbox, which then answered "last_name is required".
        (
            {
                "gift_id": "g",
                "first_name": "A",
                "last_name": "\x1d",
                "email": "a@example.com",
                "message": "\x85 ",
            },
            False,
        ),
    ],
)
def test_the_document_states_what_a_send_requires(send: dict[str, Any], valid: bool) -> None:
    assert _send_create_validator().is_valid({"send": send}) is valid


def test_numeric_metadata_the_document_allows_is_accepted(
    conformance_server: SandboxServer, bearer_token: str
) -> None:
    body = {
        "send": {
            "gift_id": "gft_egift_amazon_us_25",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "message": "Hi",
            "metadata": {"contact_id": 42, "vip": True},
        }
    }
    assert _send_create_validator().is_valid(body)
    response = httpx.post(
        conformance_server.url + "/api/v3/sends",
        json=body,
        headers={"Authorization": f"Bearer {bearer_token}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["send"]["metadata"] == {"contact_id": "42", "vip": "true"}


@pytest.mark.parametrize("char", ["\x1c", "\x1d", "\x1e", "\x1f", "\x85"])
def test_required_text_is_not_blank_in_either_regex_dialect(char: str) -> None:
    """Python trims U+001C-U+001F and U+0085 as whitespace, but JSON Schema's (ECMA-262) `\\s`
    does not include them, so a bare `\\S` let a fuzzer send "\\x1d" as a last name that the
    sandbox then called missing. re.ASCII stands for the narrower `\\s` here."""
    schemas = build_openapi()["components"]["schemas"].values()
    (last_name,) = (
        s["properties"]["last_name"]
        for s in schemas
        if "pattern" in s.get("properties", {}).get("last_name", {})
    )
    assert char.strip() == ""
    assert re.search(last_name["pattern"], char, re.ASCII) is None
    assert re.search(last_name["pattern"], char + "a", re.ASCII)
