"""The PostgreSQL server fixture of the batch tests, for the chaos run's postgres mode."""

from tests.batch.conftest import postgres_server_url

__all__ = ["postgres_server_url"]
