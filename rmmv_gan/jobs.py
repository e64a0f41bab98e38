"""The job runner both transports stand on: the daemon (rmmv_gan.server) and the folder
watcher (rmmv_gan.watcher) queue their work here, and neither knows the other.

A `Job` is "work, then write": `work(progress, cancel)` makes something (a character, a probe
grid), `write(made)` puts it where it belongs and returns the result the transports report.
One worker thread runs jobs one at a time from a bounded queue; a job that fails is recorded
as failed and the worker goes on. Waiters wait on `job.wait()`, they do not poll.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections import deque
from typing import Callable

from .fileio import remove_stale_temporaries as _remove_stale, undo_interrupted
from .game import GameFolder, name_key, save_character, taken
from .pipeline import Cancelled, RequestError, make_character
from .probe import ProbeRequest, run_probe

log = logging.getLogger("rmmv_gan.jobs")

KEEP_PROBE_IMAGES = 10  # probe grids kept in memory
KEEP_FINISHED = 500  # finished job records kept for GET /api/jobs/ID
ACTIVE = ("queued", "running")


class QueueFull(Exception):
    """No place is free in the queue."""


class NameTaken(Exception):
    """A character's name is taken: by a file (game.taken) or by a queued or running job."""


class Job:
    """One piece of work: `work(progress, cancel) -> made`, then `write(made) -> result`.

    `check()` runs when the job is queued (under the queue's lock) and may refuse it by raising;
    `name` is what no two active jobs may share (compared as game.name_key does);
    `timings(made)` gives the work's own seconds per stage for the job record.
    """

    def __init__(self, request, work: Callable, write: Callable, *, kind: str, name: str | None = None,
                 check: Callable | None = None, timings: Callable | None = None):
        self.id = uuid.uuid4().hex
        self.kind = kind  # a label for clients ("character", "probe"); the worker never looks at it
        self.request = request
        self.work, self.write, self.check, self.timings_of = work, write, check, timings
        self.key = name_key(name) if name is not None else None
        self.image = None  # a probe's PNG, kept in memory
        self.state = "queued"
        self.stage = None
        self.progress = 0.0
        self.result = None
        self.error = None
        self.cancel_requested = False
        self.created = time.time()
        self.timings = None  # seconds per stage once done: the work's, writing, total (queue wait excluded)
        self._finished = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is done, failed or cancelled; True once it is."""
        return self._finished.wait(timeout)

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "stage": self.stage,
                "progress": round(self.progress, 4), "result": self.result, "error": self.error,
                "request": dataclasses.asdict(self.request), "timings": self.timings}


class ProbeImages:
    """The latest few probe grids, in memory; older ones are dropped (their result says so)."""

    def __init__(self, keep: int = KEEP_PROBE_IMAGES):
        self.kept: deque[Job] = deque()
        self.keep = keep
        self.lock = threading.Lock()

    def add(self, job: Job, png: bytes) -> dict:
        with self.lock:
            while len(self.kept) >= self.keep:
                old = self.kept.popleft()
                old.image, old.result = None, {"image": None}
            job.image = png
            self.kept.append(job)
        return {"image": f"/api/jobs/{job.id}/image"}


def remove_stale_temporaries(folder: GameFolder, min_age: float = 60.0) -> list:
    """Remove what a killed writer left where jobs write: the files of a character it had
    begun to put in place (fileio.undo_interrupted), and temporaries (`.XXXX.tmp`)."""
    undone = undo_interrupted([folder.data_dir / "characters"])
    return undone + _remove_stale((folder.characters_dir, folder.faces_dir, folder.data_dir / "characters"), min_age)


class JobQueue:
    """One worker thread runs jobs one at a time from a bounded queue; job records are read and
    changed under one lock.

    `character(request)` and `probe(request)` queue the two jobs the transports offer, made
    with `opened` (an OpenPack) and written into `folder`; `runner(opened, request, progress,
    cancel)` makes a character (default: the pipeline's make_character).
    """

    ACTIVE = ACTIVE

    def __init__(self, opened, folder: GameFolder, maxsize: int = 8, runner: Callable | None = None):
        self.opened, self.folder = opened, folder
        self.runner = runner or (lambda opened, req, progress, cancel:
                                 make_character(opened, req, progress=progress, cancel=cancel))
        self.maxsize = maxsize
        self.probe_images = ProbeImages()
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.waiting: deque[Job] = deque()  # queued jobs, oldest first; a cancelled one leaves at once
        self.closing = False
        self.durations: deque[float] = deque(maxlen=20)  # seconds, recent successful jobs
        self.jobs: dict[str, Job] = {}
        self.thread = threading.Thread(target=self._work, name="rmmv-gan-worker", daemon=True)
        self.thread.start()

    # -- the jobs offered
    def character(self, req) -> Job:
        """Queue a resolved CharacterRequest, written with game.save_character; NameTaken if the
        name is taken or an active job makes it, QueueFull if the queue is full."""
        opened, folder, runner = self.opened, self.folder, self.runner

        def refuse_taken():
            clash = taken(folder, req.name)
            if clash is not None:
                raise NameTaken(f"name: {req.name!r} is taken ({clash.parent.name}/{clash.name} exists)")

        return self.submit(Job(req, lambda progress, cancel: runner(opened, req, progress, cancel),
                               lambda character: save_character(folder, character).result,
                               kind="character", name=req.name, check=refuse_taken,
                               timings=lambda character: character.metadata["timings"]))

    def probe(self, req: ProbeRequest) -> Job:
        """Queue a layer probe: its grid is kept in memory (`job.image`), nothing is written."""
        def work(progress, cancel):
            progress("probe", 0.0)
            return run_probe(self.opened, req)

        job = Job(req, work, lambda png: self.probe_images.add(job, png), kind="probe")
        return self.submit(job)

    # -- queries
    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def snapshot(self, job_id: str) -> dict | None:
        with self.lock:
            job = self.jobs.get(job_id)
            return job.as_dict() if job else None

    def length(self) -> int:
        with self.lock:
            return sum(j.state in ACTIVE for j in self.jobs.values())

    # -- changes
    def submit(self, job: Job) -> Job:
        """Queue a job: NameTaken if an active job has its name (or its check refuses it),
        QueueFull if the queue is full."""
        with self.lock:
            if job.key is not None and any(j.key == job.key for j in self.jobs.values() if j.state in ACTIVE):
                raise NameTaken(f"name: a queued or running job already makes {job.request.name!r}")
            if job.check is not None:
                job.check()
            if len(self.waiting) >= self.maxsize:
                raise QueueFull(f"the queue is full ({self.maxsize} jobs waiting); try again later")
            self.waiting.append(job)
            self.jobs[job.id] = job
            self.wake.notify()
            self._prune()
        return job

    def cancel(self, job_id: str) -> dict | None:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            if job.state == "queued":
                self.waiting.remove(job)
                self._end(job, "cancelled", error="cancelled before it started")
            elif job.state == "running" and job.stage != "writing":  # writing: too late to stop
                job.cancel_requested = True
            return job.as_dict() | {"cancelling": job.cancel_requested}

    def _prune(self):
        finished = [j for j in self.jobs.values() if j.state not in ACTIVE]
        for j in sorted(finished, key=lambda j: j.created)[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.jobs[j.id]

    def close(self, timeout: float = 10.0):
        """Stop the worker: queued jobs are cancelled, the running one is asked to stop."""
        with self.lock:
            for j in self.waiting:
                self._end(j, "cancelled", error="the daemon stopped")
            self.waiting.clear()
            for j in self.jobs.values():  # the running one stops at its next step, unless writing
                if j.state == "running" and j.stage != "writing":
                    j.cancel_requested = True
            self.closing = True
            self.wake.notify_all()
        self.thread.join(timeout)

    @staticmethod
    def _end(job: Job, state: str, *, error: str | None = None):
        """Record how a job ended and wake its waiters (call under the lock)."""
        job.state, job.error = state, error
        if state == "done":
            job.stage, job.progress = "done", 1.0
        job._finished.set()

    # -- the worker
    def _work(self):
        while True:
            with self.lock:
                while not self.waiting and not self.closing:
                    self.wake.wait()
                if self.closing:
                    return
                job = self.waiting.popleft()
                job.state, job.stage = "running", "starting"
            try:
                self._run(job)
            except BaseException as exc:  # noqa: BLE001 - a job never takes the daemon down
                log.exception("job %s failed", job.id)
                with self.lock:
                    self._end(job, "failed", error=f"{type(exc).__name__}: {exc}")

    def _run(self, job: Job):
        started = time.perf_counter()

        def progress(stage, fraction):
            with self.lock:
                job.stage, job.progress = stage, max(job.progress, float(fraction))

        def cancel():
            return job.cancel_requested

        try:
            made = job.work(progress, cancel)
            with self.lock:
                if job.cancel_requested:
                    raise Cancelled("cancelled before writing")
                job.stage = "writing"
        except (Cancelled, RequestError) as exc:
            with self.lock:
                self._end(job, "cancelled" if isinstance(exc, Cancelled) else "failed", error=str(exc))
            return
        writing = time.perf_counter()
        try:
            result = job.write(made)
        except (OSError, ValueError) as exc:  # a name taken meanwhile, a bad name, a full disk
            with self.lock:
                self._end(job, "failed", error=f"writing: {exc}")
            return
        with self.lock:
            done = time.perf_counter()
            job.result = result
            if job.timings_of is not None:
                job.timings = job.timings_of(made) | {"writing": round(done - writing, 4),
                                                      "total": round(done - started, 4)}
            self.durations.append(done - started)
            self._end(job, "done")

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely free: the mean of recent jobs."""
        with self.lock:
            mean = sum(self.durations) / len(self.durations) if self.durations else 5.0
        return max(1, min(600, round(mean)))
