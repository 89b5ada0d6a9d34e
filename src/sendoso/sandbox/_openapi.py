"""The OpenAPI 3.1 description of the sandbox's public endpoints.

Written to match what the handlers answer, status by status, so a schema-driven fuzzer can hold
the sandbox to it. The send request schema is derived from :class:`sendoso.models.SendRequest`
so the two cannot drift.
"""

from __future__ import annotations

import copy
from typing import Any

from sendoso._well_known import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from sendoso.models import GiftCategory, SendRequest
from sendoso.validation import (
    MAX_FIELD_LENGTHS,
    MAX_MESSAGE_LENGTH,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_LENGTH,
)

__all__ = ["build_openapi"]

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_STRING = {"type": "string"}
#: At least one character that is neither whitespace nor a control character.
NOT_BLANK = r"[^\s\x00-\x1f\x7f-\x9f]"
_DECIMAL = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["45.00"]}
#: A price filter: what the sandbox accepts, exactly (_app._PRICE).
_PRICE_FILTER = {
    "type": "string",
    "pattern": r"^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$",
    "minLength": 1,
    "maxLength": 30,
    "examples": ["25", "49.99"],
}
#: Highest page number the sandbox takes (_app.MAX_PAGE).
_MAX_PAGE = 999_999_999
#: The sandbox's public test credentials (sandbox serve prints them too).
_TOKEN_EXAMPLE = {
    "grant_type": "client_credentials",
    "client_id": SANDBOX_CLIENT_ID,
    "client_secret": SANDBOX_CLIENT_SECRET,
}
_SEND_EXAMPLES = {
    "egift": {
        "summary": "An eGift card: delivered by email, no address",
        "value": {
            "send": {
                "gift_id": "gft_egift_amazon_us_25",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ada@example.com",
                "message": "Thanks for a great quarter!",
                "metadata": {"campaign_id": "q4-thanks"},
            }
        },
    },
    "physical": {
        "summary": "A physical gift: needs a deliverable address",
        "value": {
            "send": {
                "gift_id": "gft_phys_coffee_sampler",
                "first_name": "Ann",
                "last_name": "Lee",
                "email": "ann.lee@example.com",
                "company": "Acme Corp",
                "address": {
                    "line1": "500 Congress Ave",
                    "city": "Austin",
                    "state": "TX",
                    "postal_code": "78701",
                    "country": "US",
                },
                "message": "Thanks for the great call, Ann!",
            }
        },
    },
}
_REQUIRED_SEND_FIELDS = ("gift_id", "first_name", "last_name", "email", "message")
_DATETIME = {"type": "string", "format": "date-time"}

_HEADERS = {
    "X-Request-Id": {
        "description": "Identifies this request in the sandbox's answers.",
        "schema": _STRING,
    },
}
_RATE_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests per second allowed.", "schema": _STRING},
    "X-RateLimit-Remaining": {"description": "Requests left in the burst.", "schema": _STRING},
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error_response(description: str, **headers: Any) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**_HEADERS, **headers},
        "content": _json(_ref("Error")),
    }


_ERRORS = {
    "400": _error_response("Invalid request: a field is missing or malformed."),
    "401": _error_response(
        "Missing, invalid or expired access token.",
        **{"WWW-Authenticate": {"schema": _STRING}},
    ),
    "404": _error_response("Not found."),
    "409": _error_response(
        "A request with the same Idempotency-Key is still in flight.", **_RETRY_AFTER
    ),
    "413": _error_response("The request body is larger than 1 MB."),
    "422": _error_response("Unprocessable: undeliverable email, ineligible country, stock."),
    "429": _error_response("Rate limited.", **_RETRY_AFTER, **_RATE_HEADERS),
    "5XX": _error_response("An injected fault (only when faults are configured)."),
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _ERRORS[code] for code in codes}


def _bounded(schema: dict[str, Any], limit: int) -> dict[str, Any]:
    """A ``str | None`` property from pydantic with its length limit."""
    return {
        **schema,
        "anyOf": [
            {**option, "maxLength": limit} if option.get("type") == "string" else option
            for option in schema["anyOf"]
        ],
    }


def _send_request_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The send request as the API takes it: pydantic's shape (all optional, so that the SDK
    can report every missing field at once) plus what the sandbox requires and limits."""
    schema = SendRequest.model_json_schema(ref_template=_REF)
    definitions = schema.pop("$defs", {})
    properties = schema["properties"]
    for name in _REQUIRED_SEND_FIELDS:
        limit = MAX_MESSAGE_LENGTH if name == "message" else MAX_FIELD_LENGTHS[name]
        # Surrounding whitespace is trimmed, so a blank value counts as missing. Python's
        # trimming also takes U+001C-U+001F and U+0085, which a JSON Schema (ECMA-262) `\S`
        # would let through: the pattern names one character that survives either way.
        properties[name] = {
            "type": "string",
            "minLength": 1,
            "maxLength": limit,
            "pattern": NOT_BLANK,
            "title": properties[name].get("title", name),
        }
    properties["email"]["format"] = "email"
    for name in ("company", "title", "variant_id", "team_id"):
        properties[name] = _bounded(properties[name], MAX_FIELD_LENGTHS[name])
    # Scalars are taken and stored as strings; nested values are refused.
    properties["metadata"] = {
        "type": "object",
        "maxProperties": MAX_METADATA_KEYS,
        "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY_LENGTH},
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": MAX_METADATA_VALUE_LENGTH},
                {"type": "number"},
                {"type": "boolean"},
            ]
        },
        "title": "Metadata",
    }
    schema["required"] = list(_REQUIRED_SEND_FIELDS)
    address = definitions.get("Address")
    if address is not None:
        for part, limit_key in (
            ("line1", "address.line1"),
            ("line2", "address.line2"),
            ("city", "address.city"),
            ("state", "address.state"),
            ("postal_code", "address.postal_code"),
            ("country", "address.country"),
        ):
            address["properties"][part] = _bounded(
                address["properties"][part], MAX_FIELD_LENGTHS[limit_key]
            )
    return schema, definitions


def _schemas() -> dict[str, Any]:
    send_request, definitions = _send_request_schema()
    field_problem = {
        "type": "object",
        "required": ["field", "code", "message"],
        "properties": {"field": _STRING, "code": _STRING, "message": _STRING},
    }
    schemas: dict[str, Any] = {
        **definitions,
        "SendRequest": send_request,
        "SendCreate": {
            "type": "object",
            "required": ["send"],
            "additionalProperties": False,
            "properties": {"send": _ref("SendRequest")},
        },
        "FieldProblem": field_problem,
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["type", "message", "details"],
                    "properties": {
                        "type": _STRING,
                        "message": _STRING,
                        "details": {"type": "array", "items": _ref("FieldProblem")},
                        "request_id": _STRING,
                    },
                }
            },
        },
        "OAuthError": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "string",
                    "enum": [
                        "invalid_request",
                        "invalid_client",
                        "unsupported_grant_type",
                    ],
                },
                "error_description": _STRING,
            },
        },
        "TokenRequest": {
            "type": "object",
            "required": ["grant_type"],
            "properties": {
                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                "client_id": _STRING,
                "client_secret": _STRING,
            },
        },
        "Token": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "created_at"],
            "properties": {
                "access_token": _STRING,
                "token_type": {"type": "string", "enum": ["Bearer"]},
                "expires_in": {"type": "integer", "minimum": 0},
                "created_at": {"type": "integer"},
            },
        },
        "ShippingEstimate": {
            "type": "object",
            "required": ["origin_country", "domestic", "international"],
            "properties": {
                "origin_country": _STRING,
                "domestic": _DECIMAL,
                "international": _DECIMAL,
            },
        },
        "GiftVariant": {
            "type": "object",
            "required": ["id", "name", "options", "in_stock"],
            "properties": {
                "id": _STRING,
                "name": _STRING,
                "options": {"type": "object", "additionalProperties": _STRING},
                "in_stock": {"type": "boolean"},
            },
        },
        "Gift": {
            "type": "object",
            "required": [
                "id",
                "name",
                "category",
                "price",
                "currency",
                "requires_address",
                "ships_to",
                "shipping_estimate",
                "variants",
                "description",
            ],
            "properties": {
                "id": _STRING,
                "name": _STRING,
                "category": {"type": "string", "enum": [c.value for c in GiftCategory]},
                "price": _DECIMAL,
                "currency": _STRING,
                "requires_address": {"type": "boolean"},
                "ships_to": _nullable({"type": "array", "items": _STRING}),
                "shipping_estimate": _nullable(_ref("ShippingEstimate")),
                "variants": {"type": "array", "items": _ref("GiftVariant")},
                "description": _STRING,
            },
        },
        "GiftList": {
            "type": "object",
            "required": ["gifts", "meta"],
            "properties": {
                "gifts": {"type": "array", "items": _ref("Gift")},
                "meta": {
                    "type": "object",
                    "required": ["page", "per_page", "total", "total_pages", "next_page"],
                    "properties": {
                        "page": {"type": "integer", "minimum": 1},
                        "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
                        "total": {"type": "integer", "minimum": 0},
                        "total_pages": {"type": "integer", "minimum": 0},
                        "next_page": _nullable({"type": "integer"}),
                    },
                },
            },
        },
        "Cost": {
            "type": "object",
            "required": ["currency", "low", "high"],
            "properties": {"currency": _STRING, "low": _DECIMAL, "high": _DECIMAL},
        },
        "Send": {
            "type": "object",
            "required": ["id", "status", "gift_id", "email", "created_at", "updated_at", "cost"],
            "properties": {
                "id": _STRING,
                "status": {
                    "type": "string",
                    "enum": [
                        "pending",
                        "processing",
                        "shipped",
                        "delivered",
                        "failed",
                        "returned",
                    ],
                },
                "status_reason": _nullable(_STRING),
                "tracking_number": _nullable(_STRING),
                "gift_id": _STRING,
                "variant_id": _nullable(_STRING),
                "email": _STRING,
                "first_name": _STRING,
                "last_name": _STRING,
                "company": _nullable(_STRING),
                "title": _nullable(_STRING),
                "message": _nullable(_STRING),
                "address": _nullable(_ref("Address")),
                "metadata": {"type": "object", "additionalProperties": _STRING},
                "team_id": _nullable(_STRING),
                "cost": {
                    "type": "array",
                    "description": "Expected cost, one range per currency involved.",
                    "items": _ref("Cost"),
                },
                "created_at": _DATETIME,
                "updated_at": _DATETIME,
            },
        },
        "SendEnvelope": {
            "type": "object",
            "required": ["send"],
            "properties": {"send": _ref("Send")},
        },
    }
    return schemas


def build_openapi() -> dict[str, Any]:
    """A fresh copy of the document (callers may mutate it)."""
    bearer: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    token_errors = {
        code: {
            "description": description,
            "headers": _HEADERS,
            "content": _json(_ref("OAuthError")),
        }
        for code, description in (
            ("400", "invalid_request or unsupported_grant_type (RFC 6749 §5.2)."),
            ("401", "invalid_client: unknown client or wrong secret."),
            ("413", "The request body is larger than 1 MB."),
        )
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Sendoso sandbox",
            "version": "3.0.0-sandbox",
            "description": (
                "A local imitation of the Sendoso REST API (OAuth 2.0 client credentials,"
                " catalog, sends, status) with a virtual clock and fault injection under"
                " /_sandbox/. See GET /_sandbox/magic for inputs that force outcomes."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/oauth/token": {
                "post": {
                    "operationId": "createToken",
                    "summary": "Exchange client credentials for an access token",
                    "description": (
                        "Client credentials in the body (JSON or form) or as HTTP Basic"
                        " (RFC 6749 §2.3.1)."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": _ref("TokenRequest"),
                                "example": _TOKEN_EXAMPLE,
                            },
                            "application/x-www-form-urlencoded": {
                                "schema": _ref("TokenRequest"),
                                "example": _TOKEN_EXAMPLE,
                            },
                        },
                    },
                    "security": [{}, {"clientBasic": []}],
                    "responses": {
                        "200": {
                            "description": "An access token.",
                            "headers": _HEADERS,
                            "content": _json(_ref("Token")),
                        },
                        **token_errors,
                    },
                }
            },
            "/api/v3/gifts": {
                "get": {
                    "operationId": "listGifts",
                    "summary": "List the gift catalog",
                    "security": bearer,
                    "parameters": [
                        {
                            "name": "category",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": [c.value for c in GiftCategory],
                            },
                        },
                        {"name": "min_price", "in": "query", "schema": _PRICE_FILTER},
                        {"name": "max_price", "in": "query", "schema": _PRICE_FILTER},
                        {
                            "name": "page",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": _MAX_PAGE,
                                "default": 1,
                            },
                        },
                        {
                            "name": "per_page",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 100,
                                "default": 25,
                            },
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "One page of the catalog.",
                            "headers": {**_HEADERS, **_RATE_HEADERS},
                            "content": _json(_ref("GiftList")),
                        },
                        **_errors("400", "401", "429"),
                    },
                }
            },
            "/api/v3/sends": {
                "post": {
                    "operationId": "createSend",
                    "summary": "Send a gift to one recipient",
                    "security": bearer,
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": (
                                "Replays the first outcome for the same body; 422 for a"
                                " different body; 409 while the first is in flight."
                            ),
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": _ref("SendCreate"),
                                "examples": _SEND_EXAMPLES,
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "The send was created.",
                            "headers": {
                                **_HEADERS,
                                "Location": {"schema": _STRING},
                                "Idempotent-Replayed": {"schema": _STRING},
                            },
                            "content": _json(_ref("SendEnvelope")),
                            "links": {
                                "GetSend": {
                                    "operationId": "getSend",
                                    "parameters": {"send_id": "$response.body#/send/id"},
                                    "description": "Follow the send's status.",
                                }
                            },
                        },
                        **_errors("400", "401", "404", "409", "413", "422", "429", "5XX"),
                    },
                }
            },
            "/api/v3/sends/{send_id}": {
                "get": {
                    "operationId": "getSend",
                    "summary": "A send and its current status",
                    "security": bearer,
                    "parameters": [
                        {
                            "name": "send_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The send.",
                            "headers": {**_HEADERS, **_RATE_HEADERS},
                            "content": _json(_ref("SendEnvelope")),
                        },
                        **_errors("401", "404", "429"),
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An access token from POST /oauth/token.",
                },
                "clientBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "client_id:client_secret, for POST /oauth/token only.",
                },
                "oauth2": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}},
                },
            },
        },
    }
    return copy.deepcopy(document)
