"""The daemon as one object, the Python API under `rmmv-gan serve` and `rmmv-gan watch`.

A `Daemon` holds what both transports share: the config, the game folder, the opened pack,
the job queue (rmmv_gan.jobs), the token and the URL. `.app()` is its HTTP side
(rmmv_gan.server), `.serve()` runs that with waitress (and, if asked, the folder watcher on
the same queue), `.watch()` runs the folder watcher alone (rmmv_gan.watcher). The server and
the watcher do not know each other; this module puts them side by side.

    daemon = Daemon(ServerConfig(project="MyGame"))   # the embedded default pack
    app = daemon.app()                                # Flask: test_client(), or any WSGI server
    daemon.serve()                                    # until Ctrl+C
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from flask import Flask

from .fileio import atomic_write_bytes
from .game import GameFolder
from .jobs import JobQueue, remove_stale_temporaries
from .pipeline import MAX_BODY
from .server import ServerConfig, build_app, refusal

__all__ = ["Daemon", "ServerConfig", "resolve_token", "url_host", "allowed_hosts", "is_loopback",
           "write_server_json", "remove_server_json", "signed_in_url"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")

# How waitress treats connections (docs/api.md, "Limits"). Every request the plugin and the
# pages make is small and quick, so a connection idle for CHANNEL_TIMEOUT seconds (a page that
# opened it and sent half a header) is closed; the check runs every CLEANUP_INTERVAL seconds.
# A hostile page cannot then hold all CONNECTION_LIMIT places for long; /api/health answers
# again within about CHANNEL_TIMEOUT + CLEANUP_INTERVAL seconds. A body larger than
# pipeline.MAX_BODY is refused by its Content-Length before it is read (chunked: as it passes
# the size), so nothing large is ever spooled to disk.
CHANNEL_TIMEOUT = 10
CLEANUP_INTERVAL = 2
CONNECTION_LIMIT = 100
MAX_HEADER_BYTES = 16 * 1024


def waitress_settings() -> dict:
    return {"channel_timeout": CHANNEL_TIMEOUT, "cleanup_interval": CLEANUP_INTERVAL,
            "connection_limit": CONNECTION_LIMIT, "max_request_header_size": MAX_HEADER_BYTES,
            # waitress refuses a body of max_request_body_size bytes or more
            "max_request_body_size": MAX_BODY + 1}

WILDCARD = ("", "0.0.0.0", "::")


def resolve_token(explicit: str | None) -> str:
    token = explicit or os.environ.get("RMMV_GAN_TOKEN") or secrets.token_urlsafe(32)
    if not token.isprintable() or any(c.isspace() for c in token) or len(token) < 8:
        raise ValueError("token: use at least 8 printable characters without spaces")
    return token


def url_host(host: str) -> str:
    """The host part of the daemon's URL: loopback for a wildcard bind, IPv6 in brackets."""
    if host in WILDCARD:
        host = "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def allowed_hosts(host: str, port: int) -> set:
    names = {"127.0.0.1", "localhost", "[::1]"}
    if host not in WILDCARD:
        names.add(url_host(host))
    return {f"{n}:{port}".lower() for n in names}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def write_server_json(folder: GameFolder, url: str, token: str) -> Path:
    """GAME/rmmv_gan/server.json {url, token}, atomically, private to the user where the OS can."""
    path = folder.data_dir / "server.json"
    # Private from the first byte (the temporary file is 0600 and is renamed into place):
    # a reader never sees it empty or half written.
    atomic_write_bytes(path, (json.dumps({"url": url, "token": token}, indent=2) + "\n").encode(), overwrite=True,
                       mode=0o600)
    return path


def remove_server_json(folder: GameFolder, url: str, token: str) -> bool:
    """Remove GAME/rmmv_gan/server.json when it still names this daemon (a daemon started since
    may have replaced it), so nothing points at a daemon that has stopped."""
    path = folder.data_dir / "server.json"
    try:
        if json.loads(path.read_text(encoding="utf-8")) != {"url": url, "token": token}:
            return False
        path.unlink()
    except (OSError, ValueError):
        return False
    return True


def signed_in_url(url: str, token: str) -> str:
    """The page's address with the token in the fragment, which browsers never send: opening
    it signs the page in (templates/index.html takes the token and removes it)."""
    from urllib.parse import quote

    return f"{url}/#token={quote(token, safe='')}"


@contextlib.contextmanager
def _interruptible_main_thread(needed: bool):
    """Let `_thread.interrupt_main()` stop the main thread, as the idle stop does: it only
    raises KeyboardInterrupt where Python handles SIGINT, and Python leaves SIGINT ignored when
    it starts from a parent that ignores it (a background job of a non-interactive shell, some
    launchers), where the daemon would then never stop. Python's own handler is set for the
    loop's duration and the previous one put back."""
    if not needed or signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Daemon:
    """Config, game folder, opened pack, job queue, token and URL of one daemon.

    `opened`: an OpenPack already loaded (else the config's pack is opened; pack_dir None is
    the embedded default pack). The job queue's worker starts here; `close()` stops it.
    """

    def __init__(self, config: ServerConfig | dict, opened=None):
        self.config = cfg = config if isinstance(config, ServerConfig) else ServerConfig(**config)
        self.folder = GameFolder(cfg.project)
        if opened is None:
            import torch

            from .packs import open_pack

            opened = open_pack(cfg.pack_dir, torch.device(cfg.device))
        self.opened = opened
        self.token = resolve_token(cfg.token)
        self.jobs = JobQueue(opened, self.folder, cfg.queue_size, cfg.runner)
        self.last_request = time.monotonic()  # set by the app on each request (serve --idle-exit)
        self._app = None
        self.listen_on(cfg.port)

    def listen_on(self, port: int):
        """The port the daemon is served on: its URL, the Host names and CORS origins it accepts."""
        self.port = port
        self.url = f"http://{url_host(self.config.host)}:{port}"
        self.hosts = allowed_hosts(self.config.host, port)
        self.origins = {f"http://{h}" for h in self.hosts} | set(self.config.origins)

    def app(self) -> Flask:
        """The daemon's Flask app (one per daemon)."""
        if self._app is None:
            self._app = build_app(self)
        return self._app

    def bind(self, threads: int = 4, announce: bool = True):
        """A waitress server for the app, bound and ready (`.run()`, `.close()`); clears what a
        killed writer left and, with announce, writes GAME/rmmv_gan/server.json with the real
        URL (also for port 0; see `announce`). OSError if the address cannot be bound."""
        from waitress import create_server
        from waitress.channel import HTTPChannel
        from waitress.task import ErrorTask

        class JsonErrorTask(ErrorTask):
            """waitress' own refusals (a body too large, a malformed request) as JSON
            `{"error": "FIELD: ..."}`, like the app's."""

            def execute(self):
                status, body = refusal(self.request.error.code, self.request.error.reason,
                                       self.request.error.body)
                self.status = status
                self.response_headers.append(("Content-Type", "application/json"))
                self.set_close_on_finish()
                self.content_length = len(body)
                self.write(body)

        class Channel(HTTPChannel):
            error_task_class = JsonErrorTask

        server = create_server(self.app(), host=self.config.host, port=self.config.port, threads=threads,
                               ident="rmmv-gan", **waitress_settings())
        server.channel_class = Channel
        self.listen_on(server.effective_port)
        remove_stale_temporaries(self.folder)
        if announce:
            self.announce()
        return server

    def announce(self):
        """Write GAME/rmmv_gan/server.json (URL and token) if the config asks for it: only once
        this daemon is bound and (with --watch) holds the watcher's lock, so a daemon that fails
        to start never hides the one that runs."""
        if self.config.write_server_json:
            write_server_json(self.folder, self.url, self.token)

    def serve(self, *, watch_files: bool = False, keep_days: float | None = None,
              idle_exit: float | None = None, echo: Callable[[str], None] = print):
        """Serve HTTP (and, with watch_files, answer request files on the same queue) until
        Ctrl+C, or until no request has come for `idle_exit` minutes and no job is queued or
        running; then stop, cancelling the running job (it reruns on the next start), and
        remove server.json. Raises OSError if the address cannot be bound, WatcherBusy if
        another watcher has the game. With idle_exit, call it from the main thread."""
        if idle_exit is not None and threading.current_thread() is not threading.main_thread():
            raise ValueError("idle_exit: serve must run in the main thread (it is stopped as Ctrl+C stops it)")
        server = self.bind(announce=False)
        watcher = None
        idle = threading.Event()
        try:
            if watch_files:
                from .watcher import KEEP_DAYS, Watcher

                watcher = Watcher(self.folder, self.jobs, self.opened.pack,
                                  keep_days=keep_days or KEEP_DAYS).start()
            self.announce()
            echo(f"rmmv-gan daemon on {self.url} (pack {self.opened.pack.name!r}, {self.config.device}); "
                 f"token in {self.folder.data_dir / 'server.json'}"
                 + (f"; answering request files in {watcher.requests_dir}" if watcher else "")
                 + (f"; stops after {idle_exit:g} min without a request" if idle_exit else ""))
            echo(f"Open the web page (signed in): {signed_in_url(self.url, self.token)}")
            if idle_exit:
                self._stop_when_idle(idle_exit * 60, idle)
            try:
                with _interruptible_main_thread(idle_exit is not None):
                    server.run()
            except KeyboardInterrupt:
                pass
        finally:
            server.close()
            if watcher is not None:  # like HTTP jobs, a running file job is cancelled; it reruns next start
                watcher.close()
            self.close()
            if self.config.write_server_json:
                remove_server_json(self.folder, self.url, self.token)
        if idle.is_set():
            echo(f"rmmv-gan daemon stopped: no request for {idle_exit:g} min")

    def _stop_when_idle(self, seconds: float, idle: threading.Event):
        """Interrupt the main thread's server loop (as Ctrl+C does) once no request has come
        for `seconds` and no job is queued or running; a running job counts as use."""
        import _thread

        def wait():
            while True:
                time.sleep(min(1.0, seconds / 4))
                if self.jobs.length():
                    self.last_request = time.monotonic()
                elif time.monotonic() - self.last_request >= seconds:
                    idle.set()
                    _thread.interrupt_main()
                    return

        threading.Thread(target=wait, name="rmmv-gan-idle", daemon=True).start()

    def watch(self, *, keep_days: float | None = None, scan_interval: float | None = None,
              echo: Callable[[str], None] = print):
        """Answer request files until Ctrl+C (rmmv_gan.watcher.watch), without HTTP."""
        from .watcher import watch

        remove_stale_temporaries(self.folder)
        try:
            watch(self.folder, self.jobs, self.opened.pack, echo=echo,
                  **{k: v for k, v in (("keep_days", keep_days), ("scan_interval", scan_interval)) if v is not None})
        finally:
            self.close()

    def close(self, timeout: float = 10.0):
        """Stop the job queue: queued jobs are cancelled, the running one is asked to stop."""
        self.jobs.close(timeout)
