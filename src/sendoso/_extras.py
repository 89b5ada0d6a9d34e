"""The optional parts of the toolkit, each installed by a pip extra.

``pip install sendoso`` is the SDK alone (httpx, pydantic, email-validator, pycountry); the
command line, the batch engine, the sandbox and the MCP server each need libraries of their
own, which an extra brings (``pip install 'sendoso[batch]'``; pyproject.toml lists them).
A package that needs an extra calls :func:`require_extra` first thing, so that importing it
without the extra fails with one line naming the extra, not with a ``ModuleNotFoundError``
from somewhere deep in its imports.

The check looks modules up with :func:`importlib.util.find_spec`, which imports nothing: it
costs a few stat calls, not the import of SQLAlchemy or uvicorn.
"""

from __future__ import annotations

import importlib.util

__all__ = ["MissingExtraError", "missing_extra", "require_extra"]


class MissingExtraError(ImportError):
    """A part of sendoso was used without the pip extra that installs what it needs.

    ``extra`` is the extra's name (``"batch"``), ``missing`` the top-level modules not found.
    An :class:`ImportError`, so that ``except ImportError`` around an optional import works.
    """

    def __init__(self, feature: str, extra: str, missing: tuple[str, ...]) -> None:
        self.feature = feature
        self.extra = extra
        self.missing = missing
        super().__init__(
            f"{feature} needs the {extra!r} extra: pip install 'sendoso[{extra}]'"
            f" (missing: {', '.join(missing)})",
            name=missing[0] if missing else None,
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        # A parent package that fails to import, or a module left in sys.modules as None
        # (how Python marks a module as blocked): either way it cannot be imported.
        return False


def missing_extra(
    extra: str, *modules: str, feature: str | None = None
) -> MissingExtraError | None:
    """The error :func:`require_extra` would raise, or None when every module is installed.

    ``modules`` are top-level import names (``"sqlalchemy"``, not ``"sqlalchemy.orm"``: a
    dotted name would import its parent). ``feature`` names what needs them in the message
    (default ``sendoso.<extra>``).
    """
    missing = tuple(module for module in modules if not _installed(module))
    if not missing:
        return None
    return MissingExtraError(feature or f"sendoso.{extra}", extra, missing)


def require_extra(extra: str, *modules: str, feature: str | None = None) -> None:
    """Raise :class:`MissingExtraError` unless every one of ``modules`` can be imported::

    require_extra("batch", "sqlalchemy")
    # MissingExtraError: sendoso.batch needs the 'batch' extra:
    #     pip install 'sendoso[batch]' (missing: sqlalchemy)   <- one line, wrapped here
    """
    error = missing_extra(extra, *modules, feature=feature)
    if error is not None:
        raise error
