"""PostgreSQL fixtures for the batch engine's tests.

- `postgres_server_url` (session): a server URL whose role may create databases, from
  `SENDOSO_TEST_POSTGRES_URL`, else a private throwaway cluster started here and stopped at the
  end of the session. Neither possible: the tests fail if `SENDOSO_REQUIRE_POSTGRES=1`, else
  they are skipped with the reason.
- `postgres_url`: a fresh, empty, uniquely named database for one test, dropped afterwards.
- `ledger_url`: each test runs twice, on `sqlite:///…/ledger.db` and on a fresh `postgres_url`;
  the SQLite run never needs PostgreSQL (`-k "not postgres"` deselects every PostgreSQL test).

All URLs are SQLAlchemy URL strings (`postgresql+psycopg://…`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._postgres import (
    ENV_REQUIRE,
    ENV_URL,
    PostgresUnavailable,
    PrivateCluster,
    check_server,
    postgres_required,
    temporary_database,
)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    configured = os.environ.get(ENV_URL, "").strip()
    if configured:
        try:
            check_server(configured)
        except PostgresUnavailable as exc:
            problem = str(exc)
        else:
            yield configured
            return
        # Named explicitly, so not working is a failure rather than a reason to skip.
        pytest.fail(f"{ENV_URL} is set but unusable: {problem}", pytrace=False)
    try:
        cluster = PrivateCluster.start()
    except PostgresUnavailable as exc:
        reason = f"no PostgreSQL: {ENV_URL} is not set and no private cluster could start: {exc}"
    else:
        try:
            yield cluster.url
        finally:
            cluster.stop()
        return
    if postgres_required():
        pytest.fail(f"{ENV_REQUIRE}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    with temporary_database(postgres_server_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
