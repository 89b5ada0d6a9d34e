"""A faithful local Sendoso API, for tests and demos with no account and no network.

It serves the ``seed`` dialect (docs/architecture.md, section 5): ``POST /oauth/token``,
``GET /api/v3/gifts``, ``POST /api/v3/sends`` and ``GET /api/v3/sends/{id}``, with the SDK's own
validation rules; it honours ``Idempotency-Key``, and adds controls under ``/_sandbox/``:
``faults`` (latency, 5xx errors, dropped connections, rate limit, token lifetime, RNG seed),
``clock`` (advance the virtual clock that drives statuses and token expiry), ``sends``,
``stats``, ``reset`` and ``magic``.

Magic inputs (see :data:`MAGIC`): an email ending in ``+fail`` is accepted and later
``failed``; ``+returned`` ships and comes back ``returned``; ``+undeliverable`` or a ``.invalid``
domain is refused with 422; postal code ``00000`` fails address verification with 400.

::

    from sendoso.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(rate_limit=None)) as sandbox:
        ...  # point the SDK at sandbox.url

:class:`SandboxProcess` runs it in a child process instead (``python -m sendoso.sandbox``,
which takes its settings as JSON and reports its URL as JSON: :func:`serve_child`), for
benchmarks and fault-injection runs that want the server out of their own interpreter.
A host other than loopback is refused (:class:`RemoteHostRefusedError`) unless
``allow_remote=True``.
"""

from sendoso._extras import require_extra

require_extra("sandbox", "starlette", "uvicorn")

from sendoso.sandbox._app import create_app
from sendoso.sandbox._config import SandboxConfig
from sendoso.sandbox._control import SandboxControl
from sendoso.sandbox._lifecycle import LIFECYCLE, MAGIC
from sendoso.sandbox._process import SandboxProcess, SandboxStartError, serve_child
from sendoso.sandbox._server import RemoteHostRefusedError, SandboxServer, serve

__all__ = [
    "LIFECYCLE",
    "MAGIC",
    "RemoteHostRefusedError",
    "SandboxConfig",
    "SandboxControl",
    "SandboxProcess",
    "SandboxServer",
    "SandboxStartError",
    "create_app",
    "serve",
    "serve_child",
]
