"""`vmgallery serve` and `vmgallery worker`: the processes an operator runs."""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ...config import Settings


def serve(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where metadata, keys and blobs live (default: ~/.local/share/vmgallery)."
    ),
    host: str | None = typer.Option(None, "--host", help="Address to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port to listen on (default 8443)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="postgresql://... (default: SQLite in the data dir)."
    ),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated region names."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert"),
    tls_key: Path | None = typer.Option(None, "--tls-key"),
    insecure_http: bool = typer.Option(False, "--insecure-http", help="Serve plain HTTP (local experiments)."),
    workers: int | None = typer.Option(
        None, "--workers", help="In-process worker threads (0: none; run `vmgallery worker` elsewhere)."
    ),
    shutdown_timeout: float = typer.Option(
        10.0, "--shutdown-timeout", help="Seconds to let open requests finish on SIGTERM."
    ),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Start the API server (HTTPS by default) with in-process workers."""
    # The server's modules load here, not at import: every other command would pay for them at start.
    import uvicorn

    from ...adapters.security import ensure_certificate
    from ...config import load_settings
    from ...logs import setup_logging
    from ...wiring import build_app, build_service
    from ..http.protocol import LendingProtocol

    few_malloc_arenas()
    setup_logging(log_level)
    settings = load_settings(
        data_dir,
        host=host,
        port=port,
        database_url=database_url,
        regions=regions,
        tls_cert=tls_cert,
        tls_key=tls_key,
        insecure_http=insecure_http or None,
        workers=workers,
    )
    service = build_service(settings)
    app = build_app(service)
    ssl: dict = {}
    scheme = "http"
    if not settings.insecure_http:
        made = ensure_certificate(settings.cert_path, settings.key_path)
        ssl = {"ssl_certfile": str(settings.cert_path), "ssl_keyfile": str(settings.key_path)}
        scheme = "https"
        typer.echo(
            f"{'wrote' if made else 'using'} TLS certificate {settings.cert_path} "
            f"(trust it: export VMGALLERY_CA_BUNDLE={settings.cert_path})",
            err=True,
        )
    typer.echo(f"admin token in {settings.token_path}", err=True)

    class AnnouncingServer(uvicorn.Server):
        """uvicorn's server, printing what a user does next once it listens (the last lines they see)."""

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                typer.echo(next_steps(settings, scheme), err=True)

    server = AnnouncingServer(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=shutdown_timeout,
            # uvloop and llhttp: page writes cost less CPU than on asyncio and h11 (bench/README.md, throughput.py);
            # the protocol bounds request heads as h11 did.
            loop="uvloop",
            http=LendingProtocol,
            **ssl,
        )
    )
    server.run()


def next_steps(settings: Settings, scheme: str) -> str:
    """Three lines: how to run the CLI, the `login` line for this server, the SDK's endpoint and trust."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    endpoint = f"{scheme}://{host}:{settings.port}"
    # The console script next to this interpreter is the CLI of this install (scripts/serve: .venv/bin).
    cli = Path(sys.executable).parent / "vmgallery"
    on_path = shutil.which("vmgallery")
    if cli.exists() and on_path != str(cli):
        path_line = f'CLI:   export PATH="{cli.parent}:$PATH"   # puts `vmgallery` on PATH'
    elif on_path:
        path_line = "CLI:   vmgallery (on PATH)"
    else:
        path_line = f"CLI:   {shlex.quote(sys.executable)} -m vmgallery   # no `vmgallery` on PATH"
    login = ["vmgallery", "login", "--endpoint", endpoint, "--data-dir", str(settings.data_dir)]
    if settings.tls_cert and scheme == "https":
        login += ["--ca-bundle", str(settings.cert_path)]
    sdk = f"SDK:   base_url={endpoint!r}, token in {settings.token_path}"
    if scheme == "https":
        sdk += f", connection_verify={str(settings.cert_path)!r}"
    return "\n".join([path_line, f"login: {shlex.join(login)}", sdk])


def few_malloc_arenas(arenas: int = 2) -> None:
    """Before any thread starts: glibc gives threads that allocate at once arenas of their own (up to 8 per core),
    and the 1 MiB buffers of page reads and writes fragment each; with two, a server's idle RSS after a 256 MiB
    upload and download is 113 MiB instead of 133, at the same CPU per GiB (bench/README.md, throughput.py)."""
    import ctypes
    import ctypes.util

    mallopt = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt", None)
    if mallopt is not None:  # glibc only (musl has no arenas to limit)
        mallopt(-8, arenas)  # M_ARENA_MAX


def worker(
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    database_url: str | None = typer.Option(None, "--database-url"),
    threads: int = typer.Option(2, "--threads"),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Run background workers only (scale-out: several of these, sharing PostgreSQL)."""
    from ...config import load_settings
    from ...logs import setup_logging
    from ...wiring import build_service

    few_malloc_arenas()
    setup_logging(log_level)
    settings = load_settings(data_dir, database_url=database_url, workers=threads)
    service = build_service(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.workers.start()
    stop.wait()
    service.workers.stop()
