"""The folder watcher: request files in, characters and response files out, exactly once
(docs/requests.md).

A writer drops `ID.json` (written as `ID.json.tmp`, then renamed) into
`GAME/rmmv_gan/requests/`. The watcher claims it by renaming it into `processing/`, runs it in
a job queue (`rmmv_gan.jobs.JobQueue`, the daemon's when both run; the same request contract
as `POST /api/characters`: `CharacterRequest.from_json`), writes `responses/ID.json` atomically and moves the request to
`done/`. Each step is one rename or one atomic write, so a watcher killed at any moment leaves
every request in exactly one of requests/, processing/ or done/, and a restart finishes what
was left without running anything twice.

Filesystem events only wake the watcher; a scan of `requests/` decides what is there, and a
periodic scan covers events that were missed. One watcher per game at a time: an OS file lock
(`rmmv_gan/watcher.lock`, released by the OS even when the process is killed) makes it safe
to take over what a dead watcher left in `processing/`.

No pipeline logic lives here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from pathlib import Path

from .fileio import TargetExistsError, atomic_write_bytes, remove_stale_temporaries
from .game import AssetNameError, GameFolder, SavedCharacter, character_files, safe_asset_name
from .jobs import JobQueue, NameTaken, QueueFull
from .pipeline import MAX_BODY, CharacterRequest, RequestError

log = logging.getLogger("rmmv_gan.watcher")

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
KEEP_DAYS = 7.0
SCAN_INTERVAL = 2.0  # seconds between fallback scans of requests/
PRUNE_INTERVAL = 3600.0  # seconds between removals of expired done/ and responses/ files
STALE_TMP = 60.0  # seconds before our own leftover temporaries (.XXXX.tmp) are removed


class WatcherBusy(RuntimeError):
    """Another watcher holds this game's lock."""


def request_id_error(stem: str) -> str | None:
    """Why `stem` (a request file name without `.json`) is not a valid request ID, or None."""
    if not ID_PATTERN.fullmatch(stem):
        return (f"id: the file name {ascii(stem + '.json')} is not a valid request ID (1 to 64 ASCII "
                f"letters, digits, '_' and '-', starting with a letter or digit)")
    try:
        safe_asset_name(stem)  # the charset passes everything else; this catches CON, NUL, COM1, ...
    except AssetNameError:
        return f"id: {stem!r} is a reserved device name on Windows"
    return None


def sanitized_id(filename: str) -> str:
    """The ID a request file with an invalid name is answered under: `invalid-` and the first 16
    hex digits of the SHA-256 of its name's bytes. The same name always gives the same ID."""
    return "invalid-" + hashlib.sha256(os.fsencode(filename)).hexdigest()[:16]


def _is_request_name(name: str) -> bool:
    # Hidden files are temporaries (ours are `.XXXX.tmp`, editors make `.#x.json`); a writer's
    # `ID.json.tmp` does not end in .json, so it is never read half-written.
    return name.lower().endswith(".json") and not name.startswith(".")


class _FolderLock:
    """An exclusive, non-blocking OS lock on a file; the OS drops it when the process ends."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a+b")
        try:
            if os.name == "nt":
                import msvcrt

                self.file.seek(0)
                msvcrt.locking(self.file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise WatcherBusy(f"another watcher is already answering requests in {path.parent} "
                              f"(it holds {path.name})") from None

    def release(self):
        if self.file.closed:
            return
        try:
            if os.name == "nt":
                import msvcrt

                self.file.seek(0)
                msvcrt.locking(self.file.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
        except OSError:
            pass
        self.file.close()


class Watcher:
    """Answers request files in GAME/rmmv_gan/requests/ through a JobQueue.

    start() takes the game's lock (WatcherBusy if another watcher has it) and begins: first
    what a dead watcher left in processing/, then what waits in requests/, then new files as
    they come. stop() finishes the running request (stop(cancel=True) cancels it; it stays in
    processing/ and runs on the next start); join() waits for the thread; close() releases all.
    """

    def __init__(self, game: GameFolder | str | os.PathLike, jobs: JobQueue, pack, *,
                 keep_days: float = KEEP_DAYS, scan_interval: float = SCAN_INTERVAL):
        if keep_days <= 0:
            raise ValueError("keep_days: must be more than 0")
        self.folder = game if isinstance(game, GameFolder) else GameFolder(game)
        self.jobs, self.pack = jobs, pack
        self.keep_days, self.scan_interval = float(keep_days), float(scan_interval)
        root = self.folder.data_dir
        self.requests_dir, self.processing_dir = root / "requests", root / "processing"
        self.responses_dir, self.done_dir = root / "responses", root / "done"
        self._stopping = threading.Event()
        self._cancel = threading.Event()
        self._wake = threading.Event()
        self._ended = threading.Event()
        self._lock = None
        self._running = None  # the job of the request being answered
        self._running_lock = threading.Lock()
        self._observer = None
        self._thread = None
        self._last_prune = 0.0

    # -- life cycle
    def start(self) -> "Watcher":
        self._lock = _FolderLock(self.folder.data_dir / "watcher.lock")
        try:
            for d in (self.requests_dir, self.processing_dir, self.responses_dir, self.done_dir):
                d.mkdir(parents=True, exist_ok=True)
            self._observer = self._observe()
            self._thread = threading.Thread(target=self._loop, name="rmmv-gan-watcher", daemon=True)
            self._thread.start()
        except BaseException:
            self.close()
            raise
        return self

    def stop(self, cancel: bool = False):
        """Take no new request; with cancel, also cancel the one running."""
        self._stopping.set()
        if cancel:
            with self._running_lock:
                self._cancel.set()
                if self._running is not None:
                    self.jobs.cancel(self._running.id)  # no effect once it is writing: it then finishes
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the watcher's thread; True once it has ended."""
        # An Event, not Thread.join: a Ctrl+C that interrupts Thread.join can leave the thread
        # looking ended while it still runs (seen with CPython 3.11).
        return self._thread is None or self._ended.wait(timeout)

    def close(self, timeout: float = 30.0):
        """Stop (cancelling the running request), wait, and release the lock and the observer."""
        self.stop(cancel=True)
        self.join(timeout)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
        if self._lock is not None and (self._thread is None or self._ended.is_set()):
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _observe(self):
        """A watchdog observer that wakes the loop on any change in requests/, or None where the
        platform refuses one (e.g. out of inotify watches): the periodic scan then does it all."""
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer

            wake = self._wake

            class Wake(FileSystemEventHandler):
                def on_any_event(self, event):
                    wake.set()

            observer = Observer()
            observer.schedule(Wake(), str(self.requests_dir), recursive=False)
            observer.start()
            return observer
        except Exception as exc:  # noqa: BLE001 - events are an optimisation only
            log.warning("no file events (%s); scanning %s every %.1f s", exc, self.requests_dir,
                        self.scan_interval)
            return None

    # -- the loop
    def _loop(self):
        try:
            self._prune()
            for path in self._listed(self.processing_dir):  # left by a watcher that died
                if self._stopping.is_set():
                    return
                self._answer_safely(path, reclaimed=True)
            while not self._stopping.is_set():
                self._wake.clear()
                for path in self._listed(self.requests_dir):
                    if self._stopping.is_set() or self.jobs.closing:
                        return
                    self._claim_and_answer(path)
                if time.time() - self._last_prune >= PRUNE_INTERVAL:
                    self._prune()
                if self.jobs.closing:  # the daemon stopped its queue: nothing could run
                    return
                self._wake.wait(self.scan_interval)
        except Exception:  # noqa: BLE001 - say why the watcher stopped instead of vanishing
            log.exception("the watcher stopped")
        finally:
            self._ended.set()

    def _listed(self, folder: Path) -> list:
        """Request files in `folder`, oldest first (then by name). Folders are skipped; links and
        other odd files are listed so that they get a failed response."""
        found = []
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            return []
        for entry in entries:
            if not _is_request_name(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    continue
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
            except OSError:  # vanished meanwhile
                continue
        return [folder / name for _, name in sorted(found)]

    def _claim_and_answer(self, path: Path):
        stem = path.name[: -len(".json")]
        rid = stem if request_id_error(stem) is None else sanitized_id(path.name)
        claimed = self.processing_dir / f"{rid}.json"
        try:
            # The claim: one atomic rename. If the file went (its writer took it back, another
            # reader had it) the rename fails and the request is not ours.
            os.replace(path, claimed)
        except FileNotFoundError:
            return
        except OSError as exc:  # e.g. Windows: still open in the writer or a virus scanner
            log.debug("cannot claim %s yet: %s", path.name, exc)
            return
        self._answer_safely(claimed, id_error=request_id_error(stem))

    def _answer_safely(self, claimed: Path, **kw):
        """Answer a claimed request; whatever goes wrong, it gets a failed response and moves to
        done/, so no request waits in processing/ forever. Only if even that fails (a full disk,
        a read-only folder) does it stay there, for the next start."""
        try:
            self._answer_claimed(claimed, **kw)
        except Exception as exc:  # noqa: BLE001 - one request never takes the watcher down
            log.exception("request %s: failed unexpectedly", claimed.stem)
            rid = claimed.name[: -len(".json")]
            try:
                if claimed.exists() and request_id_error(rid) is None:
                    self._respond(rid, "failed", None, f"internal error: {type(exc).__name__}: {exc}")
                    self._finish(claimed, rid)
            except Exception:  # noqa: BLE001
                log.exception("request %s: could not be answered; it stays in %s until the next start",
                              rid, self.processing_dir)

    def _answer_claimed(self, claimed: Path, reclaimed: bool = False, id_error: str | None = None):
        rid = claimed.name[: -len(".json")]
        if request_id_error(rid) is not None:  # only by hand: we put valid IDs here
            id_error = request_id_error(rid)
            rid = sanitized_id(claimed.name)
            renamed = self.processing_dir / f"{rid}.json"
            os.replace(claimed, renamed)
            claimed = renamed
        if (self.responses_dir / f"{rid}.json").exists():
            log.info("request %s: already answered; not run again", rid)
            if (self.done_dir / f"{rid}.json").exists():  # a reused ID: done/ keeps the one that ran
                claimed.unlink()
            else:  # the last watcher died between the response and the move
                self._finish(claimed, rid)
            return
        if id_error is not None:
            self._respond(rid, "failed", None, id_error)
            self._finish(claimed, rid)
            return
        try:
            body = self._read(claimed)
            req = CharacterRequest.from_json(body).resolved(self.pack)
        except RequestError as exc:
            self._respond(rid, "failed", None, str(exc))
            self._finish(claimed, rid)
            return
        if body.get("seed") != req.seed or body.get("name") != req.name:
            # Keep the drawn seed and name with the claim: a run after a crash makes the same
            # character, and can tell that one finished writing before the crash.
            atomic_write_bytes(claimed, _json(body | {"seed": req.seed, "name": req.name}), overwrite=True,
                               make_folder=False)
        outcome = self._run(rid, req, reclaimed)
        if outcome is None:  # cancelled: left in processing/ for the next start
            log.info("request %s: cancelled; it runs again on the next start", rid)
            return
        self._respond(rid, *outcome)
        self._finish(claimed, rid)

    def _read(self, claimed: Path):
        """The request's JSON, or RequestError saying why not."""
        st = os.lstat(claimed)
        if not stat.S_ISREG(st.st_mode):  # a link could read any file, a FIFO would block forever
            raise RequestError("file: not a regular file")
        if st.st_size > MAX_BODY:
            raise RequestError(f"body: larger than {MAX_BODY // 1024} KiB")
        with open(claimed, "rb") as f:
            data = f.read(MAX_BODY + 1)
        if len(data) > MAX_BODY:
            raise RequestError(f"body: larger than {MAX_BODY // 1024} KiB")
        try:
            return json.loads(data.decode("utf-8-sig"))  # -sig: Windows editors may add a BOM
        except UnicodeDecodeError:
            raise RequestError("body: not UTF-8 text") from None
        except RecursionError:
            raise RequestError("body: nested too deeply") from None
        except ValueError as exc:
            raise RequestError(f"body: not valid JSON ({exc})") from None

    def _run(self, rid: str, req, reclaimed: bool):
        """Run the request in the job queue: ("done", result, None), ("failed", None, error), or
        None if it was cancelled or the watcher stopped before it could start."""
        while True:
            try:
                job = self.jobs.character(req)
                break
            except NameTaken as exc:
                earlier = self._written_before_crash(req) if reclaimed else None
                if earlier is not None:
                    log.info("request %s: its files were written before the last watcher stopped", rid)
                    return "done", earlier, None
                return "failed", None, str(exc)
            except QueueFull:  # the daemon's HTTP clients filled the queue: wait for a place
                if self._stopping.wait(0.5):
                    return None
        log.info("request %s: running (%s)", rid, req.name)
        with self._running_lock:
            self._running = job
            if self._cancel.is_set():  # stop(cancel=True) came before the job was known
                self.jobs.cancel(job.id)
        try:
            job.wait()
        finally:
            with self._running_lock:
                self._running = None
        if job.state == "done":
            log.info("request %s: done (%s, %s)", rid, job.result["character"], job.result["faces"])
            return "done", job.result, None
        if job.state == "failed":
            log.info("request %s: failed: %s", rid, job.error)
            return "failed", None, job.error
        return None

    def _written_before_crash(self, req) -> dict | None:
        """The result, if a run killed after writing made exactly this character; else None."""
        paths = character_files(self.folder, req.name)
        try:
            meta = json.loads(paths["metadata"].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        wanted = req.as_json()
        if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in wanted.items()):
            return None
        if not (paths["character"].is_file() and paths["faces"].is_file()):
            return None
        return SavedCharacter.of(self.folder, req.name, req.seed, paths).result

    def _respond(self, rid: str, state: str, result, error):
        body = {"id": rid, "state": state, "result": result, "error": error}
        try:
            # make_folder=False: a game deleted meanwhile is not recreated to hold the answer
            atomic_write_bytes(self.responses_dir / f"{rid}.json", _json(body), overwrite=False, make_folder=False)
        except TargetExistsError:  # answered already (a reused ID): the first answer stands
            log.info("request %s: a response exists; kept", rid)

    def _finish(self, claimed: Path, rid: str):
        done = self.done_dir / f"{rid}.json"
        os.replace(claimed, done)
        try:
            os.utime(done)  # kept for keep_days from now, not from when it was written
        except OSError:
            pass

    def _prune(self):
        """Remove done requests and responses older than keep_days, and our own temporaries
        that a killed write left behind."""
        self._last_prune = now = time.time()
        for folder in (self.done_dir, self.responses_dir):
            for p in folder.glob("*.json"):
                try:
                    if p.is_file() and now - p.stat().st_mtime >= self.keep_days * 86400:
                        p.unlink()
                except OSError:
                    pass
        remove_stale_temporaries((self.responses_dir, self.processing_dir), STALE_TMP)


def _json(obj) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode("utf-8")


def watch(game: GameFolder | str | os.PathLike, jobs: JobQueue, pack, *, keep_days: float = KEEP_DAYS,
          scan_interval: float = SCAN_INTERVAL, echo=print) -> None:
    """Answer request files in `game` through `jobs` until Ctrl+C: the first stops after the
    running request, a second cancels it (it stays in processing/ and runs on the next start).
    `rmmv-gan watch` runs this through `rmmv_gan.daemon.Daemon.watch`."""
    watcher = Watcher(game, jobs, pack, keep_days=keep_days, scan_interval=scan_interval)
    watcher.start()
    echo(f"watching {watcher.requests_dir} (Ctrl+C stops)")
    try:
        try:
            while not watcher.join(0.2):  # short waits: Ctrl+C reaches a blocking join late on Windows
                pass
        except KeyboardInterrupt:
            echo("stopping after the running request (Ctrl+C again cancels it)")
            watcher.stop()
            try:
                while not watcher.join(0.2):
                    pass
            except KeyboardInterrupt:
                echo("cancelling the running request")
                watcher.stop(cancel=True)
                watcher.join(30)
    finally:
        watcher.close()
