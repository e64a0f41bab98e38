"""The job runner (rmmv_gan.jobs) on its own: a job is "work, then write" callables, run one at
a time; waiters wake when it ends; the HTTP server and the watcher both stand on it and do not
import each other."""

import subprocess
import sys
import threading
from dataclasses import dataclass

import pytest

from rmmv_gan.jobs import Job, JobQueue, NameTaken


@dataclass
class Note:
    text: str
    name: str | None = None


@pytest.fixture
def queue():
    q = JobQueue(None, None, maxsize=4)  # no pack, no folder: these jobs bring their own work
    yield q
    q.close()


def test_a_job_runs_its_work_then_its_write_and_reports_what_write_returns(queue):
    calls = []

    def work(progress, cancel):
        progress("thinking", 0.5)
        calls.append("work")
        return "made"

    def write(made):
        calls.append(("write", made))
        return {"wrote": made}

    job = queue.submit(Job(Note("a"), work, write, kind="note"))
    assert job.wait(10)
    assert calls == ["work", ("write", "made")]
    assert queue.snapshot(job.id) | {"id": None} == {
        "id": None, "kind": "note", "state": "done", "stage": "done", "progress": 1.0, "result": {"wrote": "made"},
        "error": None, "request": {"text": "a", "name": None}, "timings": None}


def test_a_failing_write_fails_the_job_and_the_worker_goes_on(queue):
    def bad_write(made):
        raise OSError("disk full")

    failed = queue.submit(Job(Note("a"), lambda p, c: 1, bad_write, kind="note"))
    fine = queue.submit(Job(Note("b"), lambda p, c: 2, lambda made: made, kind="note"))
    assert failed.wait(10) and fine.wait(10)
    assert (failed.state, failed.error) == ("failed", "writing: disk full")
    assert (fine.state, fine.result) == ("done", 2)


def test_cancelling_a_queued_job_wakes_its_waiter(queue):
    gate = threading.Event()
    running = queue.submit(Job(Note("first"), lambda p, c: gate.wait(10), lambda made: None, kind="note"))
    queued = queue.submit(Job(Note("second"), lambda p, c: None, lambda made: None, kind="note"))
    queue.cancel(queued.id)
    assert queued.wait(5) and queued.state == "cancelled"
    gate.set()
    assert running.wait(10) and running.state == "done"


def test_two_active_jobs_may_not_make_one_name_in_any_case_or_form(queue):
    gate = threading.Event()
    queue.submit(Job(Note("a", "Caf\u00e9"), lambda p, c: gate.wait(10), lambda made: None, kind="note",
                     name="Caf\u00e9"))
    with pytest.raises(NameTaken):
        queue.submit(Job(Note("b", "CAFE\u0301"), lambda p, c: None, lambda made: None, kind="note",
                         name="CAFE\u0301"))
    gate.set()


@pytest.mark.parametrize("module, other", [("server", "watcher"), ("watcher", "server")])
def test_the_server_and_the_watcher_do_not_import_each_other(module, other):
    code = f"import sys, rmmv_gan.{module}; print('rmmv_gan.{other}' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
