"""Properties of planning over arbitrary rows: every input row gets exactly one verdict,
and every verdict is sound.

- One ledger row per input row, ``planned`` or ``skipped`` with a kind and a one-line
  reason naming the row; the summary counts the same.
- A row the file could not read is never planned.
- A planned row's request passes validation again against its gift, its send key and its
  recipient-and-gift are unique in the run, and the budget is never exceeded.

Rows come from the real catalog's gift ids and from hostile text, into a real (SQLite,
in-memory) ledger. Hypothesis runs derandomized (a fixed seed per test) and without an
example database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendoso import SendRequest, validate
from sendoso.batch import SourceRow
from sendoso.batch._columns import FIELDS
from sendoso.batch._plan import Budget, PlanOptions, plan_rows
from sendoso.batch._template import MessageTemplate
from sendoso.errors import FieldProblem
from sendoso.ledger import Ledger, LedgerRow, RowState, RunInfo, SkipKind
from sendoso.sandbox._catalog import CATALOG

PROPERTY = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GIFTS = {gift.id: gift for gift in CATALOG}

_HOSTILE = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    | st.sampled_from("\r\n\t\u202e\u200b\ufeff=+-@\u0430"),
    max_size=25,
)
_VALUES: dict[str, st.SearchStrategy[str]] = {
    "gift_id": st.sampled_from([*GIFTS, "gft_nope", " gft_egift_amazon_us_25 "]) | _HOSTILE,
    "variant_id": st.sampled_from(["var_m", "nope"]) | _HOSTILE,
    "first_name": st.sampled_from(["Ada", "Zoë", "=cmd"]) | _HOSTILE,
    "last_name": st.sampled_from(["Lovelace", "O'Brien"]) | _HOSTILE,
    # A small pool, so duplicates happen, plus anything at all.
    "email": st.sampled_from(["ada@example.com", "ADA@example.com", "bob@example.com"])
    | st.emails()
    | _HOSTILE,
    "message": st.sampled_from(["Thanks!", "Line one\nline two"]) | _HOSTILE,
    "address.line1": st.sampled_from(["1 Main St", "1 Main St\nSuite 2"]) | _HOSTILE,
    "address.city": st.sampled_from(["Springfield", "London"]) | _HOSTILE,
    "address.state": st.sampled_from(["IL", "ON", "ZZ"]) | _HOSTILE,
    "address.postal_code": st.sampled_from(["62701", "M5V 2T6", "SW1A 1AA"]) | _HOSTILE,
    "address.country": st.sampled_from(["US", "CA", "GB", "United States", "XX"]) | _HOSTILE,
}
_VALUES.update({f: _HOSTILE for f in FIELDS if f not in _VALUES})

_US_ADDRESS = {
    "address.line1": "1 Main St",
    "address.city": "Springfield",
    "address.state": "IL",
    "address.postal_code": "62701",
    "address.country": "US",
}
_BASES = st.sampled_from(
    [
        {"gift_id": "gft_egift_amazon_us_25"},
        {"gift_id": "gft_egift_amazon_us_25", **_US_ADDRESS},
        {"gift_id": "gft_phys_coffee_sampler", **_US_ADDRESS},
        {"gift_id": "gft_egift_amazon_uk_25", "address.country": "GB"},
        {**_US_ADDRESS},
    ]
)


@st.composite
def row_fields(draw: st.DrawFn) -> dict[str, str]:
    """Mostly a valid row (so that planned rows, duplicates and the budget are exercised),
    with a few fields replaced by anything, or dropped."""
    fields = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": draw(
            st.sampled_from(["ada@example.com", "ADA@example.com"])
            | st.integers(0, 20).map(lambda n: f"p{n}@example.com")
        ),
        "message": "Thanks!",
        **draw(_BASES),
    }
    for field in draw(st.lists(st.sampled_from(sorted(_VALUES)), max_size=3)):
        value = draw(_VALUES[field]).strip()
        if value:
            fields[field] = value
        else:
            fields.pop(field, None)
    return fields


_PROBLEMS = st.lists(
    st.builds(
        FieldProblem,
        field=st.sampled_from(["row", "email", "message"]),
        code=st.sampled_from(["cell_count", "too_long", "invalid", "invalid_json"]),
        message=_HOSTILE.map(lambda m: m or "bad"),
    ),
    max_size=2,
)


@st.composite
def source_rows(draw: st.DrawFn) -> list[SourceRow]:
    count = draw(st.integers(min_value=0, max_value=25))
    numbers = sorted(draw(st.sets(st.integers(min_value=1, max_value=10_000), min_size=count)))
    rows = []
    for number in numbers[:count]:
        fields = draw(row_fields())
        columns = {f.replace(".", "_"): v for f, v in fields.items()}
        problems = tuple(draw(_PROBLEMS)) if draw(st.integers(0, 4)) == 0 else ()
        rows.append(SourceRow(number, fields, columns, problems))
    return rows


@st.composite
def plan_options(draw: st.DrawFn) -> PlanOptions:
    return PlanOptions(
        run_id="prop",
        gift_id=draw(st.none() | st.sampled_from(["gft_egift_amazon_us_25", *GIFTS])),
        template=draw(
            st.none()
            | st.sampled_from(["Hi {first_name}!", "{message}", "Dear {first_name} {email}"]).map(
                MessageTemplate
            )
        ),
        budget=draw(
            st.none()
            | st.sampled_from([["0"], ["100"], ["1000"], ["500", "200 GBP"]]).map(Budget.parse)
        ),
        metadata=draw(
            st.dictionaries(st.sampled_from(["campaign", "q"]), st.text(max_size=5), max_size=2)
        ),
        base_url="http://127.0.0.1:8000",
    )


def plan(rows: list[SourceRow], options: PlanOptions) -> tuple[Any, dict[int, LedgerRow]]:
    with Ledger("sqlite://") as ledger:
        with ledger.new_run(RunInfo("prop", "http://127.0.0.1:8000")) as writer:
            summary = plan_rows(rows, CATALOG, options, writer, history=writer)
        return summary, {row.number: row for row in ledger.rows("prop")}


@PROPERTY
@given(source_rows(), plan_options())
def test_every_row_gets_exactly_one_sound_verdict(
    rows: list[SourceRow], options: PlanOptions
) -> None:
    caps = dict(options.budget.caps) if options.budget else None
    summary, verdicts = plan(rows, options)

    assert sorted(verdicts) == [row.number for row in rows]
    assert summary.rows == len(rows)
    states = Counter(v.state for v in verdicts.values())
    assert set(states) <= {RowState.PLANNED, RowState.SKIPPED}
    assert states[RowState.PLANNED] == summary.planned
    kinds = Counter(v.skip_kind for v in verdicts.values() if v.state is RowState.SKIPPED)
    assert kinds == summary.skipped
    assert set(kinds) <= {kind.value for kind in SkipKind}

    for row in rows:
        verdict = verdicts[row.number]
        if verdict.state is RowState.SKIPPED:
            assert verdict.error
            assert f"(row {row.number})" in verdict.error
            assert verdict.send_key is None
            assert verdict.request is None
        if row.problems:
            assert (verdict.state, verdict.skip_kind) == (RowState.SKIPPED, "invalid")

    planned = [v for v in verdicts.values() if v.state is RowState.PLANNED]
    assert len({v.send_key for v in planned}) == len(planned)
    assert len({v.dedupe_key for v in planned}) == len(planned)
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for verdict in planned:
        assert verdict.request is not None
        assert verdict.estimate
        request = SendRequest.model_validate(verdict.request)
        gift = GIFTS[request.gift_id or ""]
        assert validate(request, gift) == [], verdict.number
        assert verdict.recipient == (request.email or "").lower()
        for currency, (low, high) in verdict.estimate.items():
            assert low <= high
            spent[currency] += high
    if caps is not None:
        for currency, total in spent.items():
            assert total <= caps[currency]


@settings(PROPERTY, max_examples=30)
@given(source_rows())
def test_a_row_skipped_for_its_content_is_skipped_whatever_comes_before_it(
    rows: list[SourceRow],
) -> None:
    """A row's validity is its own: planning it alone or after any other rows gives the
    same ``invalid`` verdict (only duplicates and the budget depend on earlier rows)."""
    options = PlanOptions(run_id="prop", base_url="http://127.0.0.1:8000")
    _, together = plan(rows, options)
    for row in rows[-3:]:
        _, alone = plan([row], options)
        invalid_alone = alone[row.number].skip_kind == "invalid"
        assert (together[row.number].skip_kind == "invalid") is invalid_alone
