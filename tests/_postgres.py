"""A real PostgreSQL for tests: the logic lives in `chaos._postgres`, which the chaos harness
(`make chaos`) shares; the test fixtures import it from here."""

from chaos._postgres import (
    ENV_REQUIRE,
    ENV_URL,
    PostgresUnavailable,
    PrivateCluster,
    admin_engine,
    check_server,
    find_bindir,
    postgres_required,
    server_url,
    temporary_database,
)

__all__ = [
    "ENV_REQUIRE",
    "ENV_URL",
    "PostgresUnavailable",
    "PrivateCluster",
    "admin_engine",
    "check_server",
    "find_bindir",
    "postgres_required",
    "server_url",
    "temporary_database",
]
