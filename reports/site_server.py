"""``harness view``: the report site served on 127.0.0.1 for people who prefer a live page.

The site is built (:func:`reports.html.build_report`) into a temporary folder and served read-only: GET and
HEAD of files under that folder, nothing else (other methods get 501, paths outside it 404). Nothing is
written to the registry or beside the runs; the temporary folder is removed when the server stops.
"""

from __future__ import annotations

import errno
import functools
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.registry import Registry, RunEntry

HOST = "127.0.0.1"


class ReadOnlyHandler(SimpleHTTPRequestHandler):
    """Serves the site's files (GET, HEAD); no directory listing, no other method, no writes."""

    def list_directory(self, path: Any) -> None:  # type: ignore[override]
        """No listings: a folder without an index page is a 404."""
        self.send_error(404, "no listing")
        return None

    def end_headers(self) -> None:
        """Pages never come from a stale cache after a rebuild; nothing is sniffed as another type."""
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Only failed requests are logged (a page load makes dozens of requests)."""
        if str(code)[:1] in ("4", "5"):
            super().log_request(code, size)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """One short line on stderr."""
        sys.stderr.write(f"view: {format % args}\n")


def make_server(directory: Path, port: int = 8000) -> ThreadingHTTPServer:
    """A server for ``directory`` on 127.0.0.1:``port`` (0: any free port); one line naming the fix when taken."""
    handler = functools.partial(ReadOnlyHandler, directory=str(directory))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise HarnessError(f"port {port} is in use on {HOST}; pass --port N (0 picks a free port)") from None
        raise HarnessError(f"cannot serve on {HOST}:{port}: {exc.strerror or exc}; pass another --port") from None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def view(reg: Registry, refs: Sequence[str], port: int, data_dir: Path | None,
         echo: Callable[[str], None] | None = None) -> int:  # fmt: skip
    """Build the site of ``refs`` (default: every indexed run) into a temporary folder and serve it until Ctrl-C."""
    from reports.html import ReportInputs, build_report

    if echo is None:  # flushed: a script reading the address from a pipe must see it before the server blocks

        def echo(line: str) -> None:
            print(line, flush=True)

    entries: list[RunEntry] | None = [reg.resolve(r) for r in refs] if refs else None
    folder = Path(tempfile.mkdtemp(prefix="harness-view-"))
    try:
        build_report(reg, folder, ReportInputs(data_dir=data_dir), entries=entries)
        server = make_server(folder, port)
        host, real_port = server.server_address[:2]
        echo(f"serving the report on http://{host}:{real_port}/report.html (read-only; Ctrl-C stops)")
        # A process started in the background of a script inherits SIGINT ignored, and Python then never
        # raises KeyboardInterrupt: Ctrl-C (and SIGTERM, what service managers send) stop the server here.
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            echo("stopped")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.server_close()
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
