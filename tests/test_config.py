"""Settings precedence and the profile file's safety rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sendoso import ConfigurationError
from sendoso._config import load_settings

PROFILES = """
default_profile = "sandbox"

[profiles.sandbox]
base_url = "http://127.0.0.1:8787"
client_id = "sandbox-client"
client_secret = "sandbox-secret"

[profiles.production]
client_id = "prod-id"
client_secret = "prod-secret"
rate_limit = 5
"""


def write_config(tmp_path: Path, text: str = PROFILES, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_default_profile_is_used_when_nothing_else_is_set(tmp_path: Path) -> None:
    settings = load_settings(path=write_config(tmp_path), environ={})
    assert settings.profile == "sandbox"
    assert settings.base_url == "http://127.0.0.1:8787"
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == "sandbox-secret"
    assert "sandbox-secret" not in repr(settings)


def test_environment_credentials_beat_the_default_profile_as_a_unit(tmp_path: Path) -> None:
    environ = {"SENDOSO_CLIENT_ID": "env-id", "SENDOSO_CLIENT_SECRET": "env-secret"}
    settings = load_settings(path=write_config(tmp_path), environ=environ)
    assert settings.client_id == "env-id"
    # The environment's secret goes to the environment's host (the default), never to the
    # profile's.
    assert settings.base_url == "https://app.sendoso.com"


def test_an_explicit_profile_is_one_unit_whatever_the_environment_says(tmp_path: Path) -> None:
    environ = {"SENDOSO_CLIENT_ID": "env-id", "SENDOSO_BASE_URL": "http://localhost:1"}
    settings = load_settings(profile="production", path=write_config(tmp_path), environ=environ)
    assert settings.client_id == "prod-id"
    assert settings.base_url == "https://app.sendoso.com"  # not the environment's host
    assert settings.rate_limit == 5


def test_a_host_without_a_secret_above_the_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="base_url but no client secret") as caught:
        load_settings(path=write_config(tmp_path), environ={"SENDOSO_BASE_URL": "http://x:1"})
    assert "sandbox-secret" not in str(caught.value)


def test_a_flag_may_choose_the_host_explicitly(tmp_path: Path) -> None:
    settings = load_settings(
        path=write_config(tmp_path),
        environ={"SENDOSO_BASE_URL": "http://x:1"},
        base_url="http://127.0.0.1:9",
    )
    assert settings.base_url == "http://127.0.0.1:9"


def test_arguments_beat_everything(tmp_path: Path) -> None:
    settings = load_settings(
        profile="production",
        path=write_config(tmp_path),
        environ={"SENDOSO_CLIENT_ID": "env-id"},
        client_id="flag-id",
    )
    assert settings.client_id == "flag-id"


def test_profile_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(path=write_config(tmp_path), environ={"SENDOSO_PROFILE": "production"})
    assert settings.client_id == "prod-id"


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="production, sandbox"):
        load_settings(profile="staging", path=write_config(tmp_path), environ={})


def test_secret_in_a_world_readable_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = write_config(tmp_path, mode=0o644)
    with pytest.raises(ConfigurationError, match=f"chmod 600 {path}") as caught:
        load_settings(path=path, environ={})
    assert "sandbox-secret" not in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, text="default_profile = [")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(path=path, environ={})


def test_no_file_is_fine(tmp_path: Path) -> None:
    settings = load_settings(path=tmp_path / "missing.toml", environ={})
    assert settings.base_url == "https://app.sendoso.com"
    assert settings.client_id is None


@pytest.mark.parametrize("written", ["987654321987654", '["s3cr3t-in-a-list"]', "{ v = 'x1y2z3' }"])
def test_a_secret_of_the_wrong_type_is_refused_without_being_shown(
    tmp_path: Path, written: str
) -> None:
    """pydantic's message quoted the bad input: a secret written unquoted (a TOML number) or
    as a list reached the error, and so the CLI's stderr and --json."""
    text = f'default_profile = "p"\n[profiles.p]\nclient_id = "abc"\nclient_secret = {written}\n'
    path = write_config(tmp_path, text=text)
    with pytest.raises(ConfigurationError, match="client_secret is invalid") as caught:
        load_settings(path=path, environ={})
    message = str(caught.value)
    for fragment in ("987654321987654", "s3cr3t-in-a-list", "x1y2z3"):
        assert fragment not in message
    assert "quote it" in message
