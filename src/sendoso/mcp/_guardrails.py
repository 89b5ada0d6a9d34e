"""The limits the person running the MCP server sets on what an agent may send.

Set by flags, the environment (``SENDOSO_MCP_*``) or a TOML table (``[mcp]`` in the sendoso
config file, or a file of its own), in that order of precedence; never by the agent, whose
tools have no parameter that touches them. The checks are pure functions over a gift, its
cost estimate and what the ledger says was spent, so they read the same in the MCP server,
in ``sendoso approvals approve`` and in a test.

Amounts are compared with the *high* end of a send's estimate (item, fulfillment fee and
shipping), per currency, never converted: a send involving a currency the limit does not
name is refused (or, for the approval threshold, held for a person).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from sendoso.batch import Budget
from sendoso.errors import ConfigurationError, ValidationError
from sendoso.models import CostEstimate, Gift
from sendoso.pricing import over_cap

__all__ = ["ENV_NAMES", "Guardrails", "Totals", "load_guardrails"]

Totals = Mapping[str, tuple[Decimal, Decimal]]
Caps = Mapping[str, Decimal]

#: Each guardrail's environment variable.
ENV_NAMES = {
    "allow_send": "SENDOSO_MCP_ALLOW_SEND",
    "max_price": "SENDOSO_MCP_MAX_PRICE",
    "daily_cap": "SENDOSO_MCP_DAILY_CAP",
    "total_cap": "SENDOSO_MCP_TOTAL_CAP",
    "allow_gifts": "SENDOSO_MCP_ALLOW_GIFTS",
    "allow_categories": "SENDOSO_MCP_ALLOW_CATEGORIES",
    "cooldown_days": "SENDOSO_MCP_COOLDOWN_DAYS",
    "approval_above": "SENDOSO_MCP_APPROVAL_ABOVE",
    "allow_resend": "SENDOSO_MCP_ALLOW_RESEND",
}
_FLAGS = {
    "allow_send": "--allow-send",
    "max_price": "--max-price",
    "daily_cap": "--daily-cap",
    "total_cap": "--total-cap",
    "allow_gifts": "--allow-gift",
    "allow_categories": "--allow-category",
    "cooldown_days": "--cooldown",
    "approval_above": "--approval-above",
    "allow_resend": "--allow-resend",
}
_AMOUNTS = ("max_price", "daily_cap", "total_cap", "approval_above")
_LISTS = ("allow_gifts", "allow_categories")
_BOOLS = ("allow_send", "allow_resend")


def _money(value: Decimal, currency: str) -> str:
    return f"{value:.2f} {currency}"


def _caps_text(caps: Caps) -> str:
    return " / ".join(_money(v, c) for c, v in caps.items())


@dataclass(frozen=True)
class Guardrails:
    """What an agent may send. Empty caps and lists mean "no limit of this kind"."""

    allow_send: bool = False
    max_price: Caps = field(default_factory=dict)
    daily_cap: Caps = field(default_factory=dict)
    total_cap: Caps = field(default_factory=dict)
    allow_gifts: frozenset[str] = frozenset()
    allow_categories: frozenset[str] = frozenset()
    cooldown_days: float | None = None
    #: Sends whose high estimate is above this wait for a person; ``None``: none wait.
    approval_above: Caps | None = None
    allow_resend: bool = False

    # Serialised with an approval, so that approving re-checks what the server enforced.
    def as_dict(self) -> dict[str, Any]:
        return {
            "allow_send": self.allow_send,
            "max_price": {c: str(v) for c, v in self.max_price.items()},
            "daily_cap": {c: str(v) for c, v in self.daily_cap.items()},
            "total_cap": {c: str(v) for c, v in self.total_cap.items()},
            "allow_gifts": sorted(self.allow_gifts),
            "allow_categories": sorted(self.allow_categories),
            "cooldown_days": self.cooldown_days,
            "approval_above": (
                None
                if self.approval_above is None
                else {c: str(v) for c, v in self.approval_above.items()}
            ),
            "allow_resend": self.allow_resend,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Guardrails:
        def caps(value: Any) -> dict[str, Decimal]:
            return {str(c): Decimal(str(v)) for c, v in (value or {}).items()}

        above = data.get("approval_above")
        cooldown = data.get("cooldown_days")
        return cls(
            allow_send=bool(data.get("allow_send")),
            max_price=caps(data.get("max_price")),
            daily_cap=caps(data.get("daily_cap")),
            total_cap=caps(data.get("total_cap")),
            allow_gifts=frozenset(data.get("allow_gifts") or ()),
            allow_categories=frozenset(data.get("allow_categories") or ()),
            cooldown_days=float(cooldown) if cooldown is not None else None,
            approval_above=None if above is None else caps(above),
            allow_resend=bool(data.get("allow_resend")),
        )

    def describe(self) -> list[str]:
        """One line per guardrail, for the operator's log and the agent's instructions."""
        return [
            "live sending: "
            + ("ON" if self.allow_send else "OFF (send_gift checks but sends nothing)"),
            "max price per send: " + (_caps_text(self.max_price) or "none"),
            "daily cap (UTC day): " + (_caps_text(self.daily_cap) or "none"),
            "total cap: " + (_caps_text(self.total_cap) or "none"),
            "allowed gifts: "
            + (
                ", ".join(
                    sorted(self.allow_gifts | {f"category {c}" for c in self.allow_categories})
                )
                or "any"
            ),
            "per-recipient cool-down: "
            + (f"{self.cooldown_days:g} days" if self.cooldown_days else "none"),
            "approval needed above: "
            + (
                "never"
                if self.approval_above is None
                else (_caps_text(self.approval_above) or "every send")
            ),
            "same gift to the same recipient twice: "
            + ("allowed" if self.allow_resend else "refused"),
        ]

    # The checks ----------------------------------------------------------------------

    def gift_refusal(self, gift: Gift, estimate: CostEstimate) -> str | None:
        """Why this gift may not be sent at all (allow-list, price), or ``None``."""
        if (self.allow_gifts or self.allow_categories) and not (
            gift.id in self.allow_gifts or gift.category in self.allow_categories
        ):
            allowed = sorted(self.allow_gifts) + [
                f"category {c}" for c in sorted(self.allow_categories)
            ]
            return (
                f"gift {gift.id} ({gift.category}) is not on this server's allow-list "
                f"({', '.join(allowed)}); choose one of those (list_gifts shows which are allowed)"
            )
        if not self.max_price:
            return None
        if not estimate.shipping_known:
            return (
                f"gift {gift.id} has no published shipping rate, so its cost has no upper "
                f"bound and this server caps each send at {_caps_text(self.max_price)}; "
                "choose another gift"
            )
        excess = over_cap(estimate.totals(), self.max_price)
        if excess is None:
            return None
        currency, high = excess.currency, excess.needed
        if excess.cap is None:
            return (
                f"gift {gift.id} costs {currency} and this server caps each send only in "
                f"{', '.join(self.max_price)}; choose a gift priced in "
                f"{', '.join(self.max_price)}"
            )
        return (
            f"gift {gift.id} costs up to {_money(high, currency)} with fees and "
            f"shipping, over this server's maximum of {_money(excess.cap, currency)} per "
            f"send; choose a cheaper gift (list_gifts max_price=...)"
        )

    def approval_reason(self, estimate: CostEstimate) -> str | None:
        """Why this send must wait for a person, or ``None``."""
        if self.approval_above is None:
            return None
        if not self.approval_above:
            return "every send made through this server waits for a person's approval"
        if not estimate.shipping_known:
            return "its shipping rate is not published, so its cost has no upper bound"
        excess = over_cap(estimate.totals(), self.approval_above)
        if excess is None:
            return None
        if excess.cap is None:
            return f"it costs {excess.currency}, for which no approval threshold is set"
        return (
            f"it costs up to {_money(excess.needed, excess.currency)}, above the approval "
            f"threshold of {_money(excess.cap, excess.currency)}"
        )

    def spend_refusal(self, estimate: Totals, *, today: Totals, total: Totals) -> str | None:
        """Why one more send of ``estimate`` would break the daily or the total cap, given
        what this server's sends already cost or may cost (in flight and unknown count)."""
        for name, caps, spent, when, later in (
            ("daily", self.daily_cap, today, "today (UTC)", "try again tomorrow (UTC)"),
            (
                "total",
                self.total_cap,
                total,
                "in total",
                "ask the person running this server to raise the total cap",
            ),
        ):
            if not caps:
                continue
            used = {currency: high for currency, (_, high) in spent.items()}
            excess = over_cap(estimate, caps, used)
            if excess is None:
                continue
            currency = excess.currency
            if excess.cap is None:
                return (
                    f"this send costs {currency} and the {name} cap is set only in "
                    f"{', '.join(caps)}; choose a gift priced in {', '.join(caps)}"
                )
            left = max(excess.cap - excess.used, Decimal(0))
            return (
                f"over the {name} cap of {_money(excess.cap, currency)}: {excess.used:.2f} "
                f"spent or in flight {when}, this send needs up to {excess.needed:.2f}; "
                f"{left:.2f} is left: choose a cheaper gift, or {later}"
            )
        return None


def _parse_amounts(name: str, values: Iterable[str]) -> dict[str, Decimal]:
    try:
        return dict(Budget.parse(values).caps)
    except ValidationError as exc:
        # Budget speaks of --max-spend; say which guardrail it was.
        text = "; ".join(p.message.replace("--max-spend", _FLAGS[name]) for p in exc.problems)
        raise ConfigurationError(text) from None


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(f"{ENV_NAMES[name]} must be true or false, not {value!r}")


def _from_file(path: Path) -> dict[str, Any]:
    from sendoso._config import read_profiles

    document = read_profiles(path)
    table = document.get("mcp", document)
    if not isinstance(table, dict):
        raise ConfigurationError(f"[mcp] in {path} must be a table")
    unknown = sorted(k for k in table if k not in ENV_NAMES and k != "profiles")
    if "mcp" in document and unknown:
        raise ConfigurationError(
            f"[mcp] in {path} has unknown keys: {', '.join(unknown)} "
            f"(known: {', '.join(ENV_NAMES)})"
        )
    return {k: v for k, v in table.items() if k in ENV_NAMES}


def _normalise(name: str, value: Any, where: str) -> Any:
    """A raw setting (TOML value, environment text or flag value) as Guardrails holds it."""
    if name in _BOOLS:
        return _bool(name, value)
    if name in _AMOUNTS:
        items = value if isinstance(value, list) else _split(str(value))
        if name == "approval_above" and not items:
            return {}
        return _parse_amounts(name, [str(v) for v in items])
    if name in _LISTS:
        items = value if isinstance(value, list) else _split(str(value))
        cleaned = {str(v).strip() for v in items if str(v).strip()}
        return (
            frozenset(c.lower() for c in cleaned)
            if name == "allow_categories"
            else frozenset(cleaned)
        )
    try:
        days = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where}: cooldown_days must be a number of days") from None
    if days < 0:
        raise ConfigurationError(f"{where}: cooldown_days must be 0 or more")
    return days or None


def load_guardrails(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Guardrails:
    """Guardrails from ``flags`` (names as :class:`Guardrails` fields; ``None`` or empty:
    not given), then ``SENDOSO_MCP_*`` variables, then the ``[mcp]`` table of ``path``
    (default: the sendoso config file; a ``path`` given must exist), each setting taken from
    the first that has it."""
    from sendoso._config import config_path

    environ = os.environ if environ is None else environ
    if path is not None and not path.is_file():
        # A mistyped --guardrails must not quietly mean "no limits".
        raise ConfigurationError(f"guardrails file {path} does not exist")
    path = path or config_path(environ)
    values: dict[str, Any] = {}
    for name, raw in _from_file(path).items():
        values[name] = _normalise(name, raw, str(path))
    for name, variable in ENV_NAMES.items():
        if environ.get(variable) is not None and environ[variable].strip() != "":
            values[name] = _normalise(name, environ[variable], variable)
    for name, raw in (flags or {}).items():
        if name not in ENV_NAMES:
            raise TypeError(f"unknown guardrail {name!r}")
        if raw is None or raw == [] or raw is False:
            continue
        values[name] = _normalise(name, raw, _FLAGS[name])
    return replace(Guardrails(), **values)
