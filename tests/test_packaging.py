"""Install only what you use: ``pip install sendoso`` is the SDK, each other part has an extra.

The bare install is real: the package is built from a copy of this repository and installed,
with its core dependencies and nothing else, into a fresh virtual environment (once per test
session; pip's cache makes it a few seconds). There it sends a gift through the SDK to a
sandbox this environment (the full install) runs, and every other part says which extra it
needs, in one line.
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import sendoso
import sendoso.errors
from sendoso._extras import MissingExtraError, missing_extra, require_extra
from sendoso.sandbox import SandboxConfig, SandboxProcess

ROOT = Path(__file__).resolve().parent.parent
# The modules each extra brings (import names): what a bare install must lack.
EXTRA_MODULES = ("typer", "rich", "sqlalchemy", "psycopg", "starlette", "uvicorn", "mcp")


# The one-line error.


def test_a_missing_module_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # how Python marks "cannot import"

    with pytest.raises(ImportError) as failure:
        require_extra("batch", "sqlalchemy", "json")

    assert isinstance(failure.value, MissingExtraError)
    assert str(failure.value) == (
        "sendoso.batch needs the 'batch' extra: pip install 'sendoso[batch]' (missing: sqlalchemy)"
    )
    assert (failure.value.extra, failure.value.missing) == ("batch", ("sqlalchemy",))
    assert failure.value.name == "sqlalchemy"


def test_nothing_is_missing_when_every_module_is_installed() -> None:
    require_extra("batch", "sqlalchemy")
    assert missing_extra("cli", "typer", "rich") is None
    named = missing_extra("cli", "no_such_module_here", feature="the command line")
    assert named is not None
    assert str(named).startswith("the command line needs the 'cli' extra")


def test_the_check_imports_nothing() -> None:
    script = "import sys, sendoso._extras as e; e.require_extra('x', 'sqlalchemy', 'uvicorn');"
    script += "print([m for m in ('sqlalchemy', 'uvicorn') if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_the_extras_are_the_parts_of_the_toolkit() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {requirement.split(">")[0].split("[")[0] for requirement in project["dependencies"]}
    assert {"httpx", "pydantic", "email-validator", "pycountry"} <= names
    assert not names & {"typer", "rich", "sqlalchemy", "psycopg", "starlette", "uvicorn", "mcp"}
    extras = project["optional-dependencies"]
    assert {"cli", "batch", "postgres", "sandbox", "mcp", "all", "dev"} <= set(extras)
    assert extras["all"] == ["sendoso[cli,batch,postgres,sandbox,mcp]"]
    assert "sendoso[batch]" in extras["postgres"]
    assert "sendoso[batch]" in extras["mcp"]


def test_a_command_whose_part_lacks_its_extra_says_which_in_one_line(tmp_path: Path) -> None:
    # The full install, with uvicorn made unimportable: `sendoso sandbox serve` must not
    # get as far as serving, nor print a traceback.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["uvicorn"] = None
        sys.argv = ["sendoso", "sandbox", "serve", "--port", "0"]
        from sendoso.cli import main
        main()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "sendoso: sendoso.sandbox needs the 'sandbox' extra: pip install 'sendoso[sandbox]'"
        " (missing: uvicorn)\n"
    )


# One table of exports.


def _type_checking_imports() -> dict[str, str]:
    """What ``sendoso/__init__.py`` imports for type checkers: name -> module."""
    tree = ast.parse(Path(sendoso.__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    found: dict[str, str] = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom), ast.dump(statement)
        for alias in statement.names:
            assert alias.asname == alias.name, f"{alias.name} must be imported `as` itself"
            found[alias.name] = f"{statement.module}"
    return found


def test_the_package_exports_one_list() -> None:
    assert sendoso.__all__ == sorted([*sendoso._LAZY, "__version__"])
    assert _type_checking_imports() == sendoso._LAZY
    assert set(sendoso.errors.__all__) <= set(sendoso.__all__)
    for name, module in sendoso._LAZY.items():
        assert getattr(sendoso, name) is getattr(importlib.import_module(module), name), name
    assert dir(sendoso) == sendoso.__all__


# The bare install.


@dataclass(frozen=True)
class Venv:
    root: Path
    env: Mapping[str, str]

    def bin(self, name: str) -> str:
        return str(self.root / ("Scripts" if os.name == "nt" else "bin") / name)

    def run(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            env=dict(self.env),
            cwd=self.root,  # not this repository: its src/ must not be importable
            timeout=300,
            check=False,
        )

    def python(self, script: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.bin("python"), "-c", textwrap.dedent(script))


@pytest.fixture(scope="session")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv holding ``pip install sendoso`` (no extra), built from this checkout."""
    base = tmp_path_factory.mktemp("bare-install")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    # A copy, so that the build leaves nothing behind in the checkout.
    shutil.copytree(
        ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"),
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    venv = Venv(base / "venv", env)
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv.root)], check=True, timeout=300, cwd=base
    )
    installed = venv.run(venv.bin("python"), "-m", "pip", "install", "--quiet", str(source))
    assert installed.returncode == 0, installed.stderr
    return venv


def test_the_bare_install_is_the_sdk_alone(bare: Venv) -> None:
    done = bare.python(
        f"""
        import importlib.util, json, sendoso
        print(json.dumps({{
            "file": sendoso.__file__,
            "present": [m for m in {EXTRA_MODULES!r} if importlib.util.find_spec(m)],
        }}))
        """
    )
    assert done.returncode == 0, done.stderr
    assert str(bare.root) in done.stdout  # the installed copy, not this checkout
    assert '"present": []' in done.stdout


def test_the_bare_install_sends_a_gift_to_a_sandbox_of_the_full_install(bare: Venv) -> None:
    config = SandboxConfig(client_id="bare-client", client_secret="bare-secret", rate_limit=None)
    with SandboxProcess(config) as sandbox:
        env = {
            **bare.env,
            "SENDOSO_BASE_URL": sandbox.url,
            "SENDOSO_CLIENT_ID": config.client_id,
            "SENDOSO_CLIENT_SECRET": config.client_secret,
        }
        sent = subprocess.run(
            [
                bare.bin("python"),
                "-c",
                textwrap.dedent(
                    """
                    from sendoso import Sendoso

                    with Sendoso() as client:
                        gift = client.gifts.list(category="egift")[0]
                        send = client.sends.create(
                            gift_id=gift.id, first_name="Ada", last_name="Lovelace",
                            email="ada@example.com", message="Thank you!",
                        )
                    print(send.id)
                    """
                ),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=bare.root,
            timeout=300,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        recorded = sandbox.control.sends()
    assert [send["id"] for send in recorded] == [sent.stdout.strip()]
    assert (recorded[0]["email"], recorded[0]["message"]) == ("ada@example.com", "Thank you!")


@pytest.mark.parametrize(
    ("package", "extra", "missing"),
    [
        ("batch", "batch", "sqlalchemy"),
        ("sandbox", "sandbox", "starlette, uvicorn"),
        ("mcp", "mcp", "mcp, sqlalchemy"),
    ],
)
def test_a_part_of_the_bare_install_names_its_extra(
    bare: Venv, package: str, extra: str, missing: str
) -> None:
    message = (
        f"sendoso.{package} needs the {extra!r} extra: pip install 'sendoso[{extra}]'"
        f" (missing: {missing})"
    )
    caught = bare.python(
        f"""
        try:
            import sendoso.{package}
        except ImportError as exc:
            print(exc)
        """
    )
    assert caught.stdout == message + "\n"
    uncaught = bare.python(f"import sendoso.{package}")
    assert uncaught.returncode == 1
    assert uncaught.stderr.splitlines()[-1] == f"sendoso._extras.MissingExtraError: {message}"


@pytest.mark.parametrize("args", [[], ["--help"], ["gifts", "list"]])
def test_the_command_of_the_bare_install_names_the_cli_extra(bare: Venv, args: list[str]) -> None:
    done = bare.run(bare.bin("sendoso"), *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "sendoso: the command line needs the 'cli' extra: pip install 'sendoso[cli]'"
        " (missing: typer, rich)\n"
    )
