"""``python -m sendoso.sandbox``: the sandbox for a parent process that reads JSON.

Settings as one JSON object on stdin, ``{"listening": URL}`` on stdout once it accepts
connections; :func:`sendoso.sandbox.serve_child` describes both. :class:`SandboxProcess`
starts it; a person starts ``sendoso sandbox serve`` instead.
"""

import sys

from sendoso.sandbox._process import serve_child

if __name__ == "__main__":
    sys.exit(serve_child(sys.stdin, sys.stdout, sys.stderr))
