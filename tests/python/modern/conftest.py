"""Server fixtures come from ../sanctum_server.py (shared by every client suite)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sanctum_server import (  # noqa: E402,F401  (re-exported fixtures and hooks)
    EXPECTED_TOOLS,
    _server_still_running,
    access_server,
    anyio_backend,
    base_url,
    expected_version,
    guest_server,
    pytest_runtest_makereport,
    pytest_terminal_summary,
    sanctum_server,
)
