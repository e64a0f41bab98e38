"""Writes that never leave a torn file, for every file rmmv-gan writes (assets, w files,
models, pack manifests, checkpoints, the daemon's server.json, the watcher's responses).

A write goes into a hidden temporary file beside the target (`.XXXX.tmp`), is flushed to
disk, and is put in place in one step, so a crash at any moment leaves the old file or the
new one, and an error leaves no temporary file. A killed process can still leave a
temporary behind; `remove_stale_temporaries` clears those.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

__all__ = ["TargetExistsError", "atomic_write", "atomic_write_all", "atomic_write_bytes", "remove_stale_temporaries",
           "undo_interrupted", "TEMP_GLOB", "JOURNAL_GLOB"]

TEMP_GLOB = ".*.tmp"  # what our temporaries look like: hidden, beside their target
JOURNAL_GLOB = ".*.pending"  # atomic_write_all's note of the files it is putting in place


class TargetExistsError(FileExistsError):
    """The target exists and overwrite was not asked for."""


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder; NTFS journals the rename itself
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _exists_error(path: Path) -> TargetExistsError:
    return TargetExistsError(f"{path} already exists; pass overwrite=True to replace it or ask for a unique name")


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None],
                 overwrite: bool = False, mode: int | None = None, make_folder: bool = True) -> Path:
    """Call `write(f)` on a temporary file beside `path`, then put it in place in one step.

    overwrite=False raises TargetExistsError if `path` exists (also when it appears while
    writing: the final step is a hard link, which never replaces). Any exception removes the
    temporary file and leaves `path` as it was. `mode` sets the file's permission bits
    (default: those of the file it replaces, or 0644). make_folder=False: the folder must
    exist (FileNotFoundError otherwise), for folders that are not ours to create.
    """
    return atomic_write_all([(path, write)], overwrite, mode, make_folder)[0]


def atomic_write_all(items: Iterable[tuple[str | os.PathLike, Callable[[BinaryIO], None]]],
                     overwrite: bool = False, mode: int | None = None, make_folder: bool = True,
                     journal: str | os.PathLike | None = None) -> list[Path]:
    """Write several files (path, write) as one: all are written to temporaries first, then
    put in place one after the other, so the slow part (encoding, flushing) happens before
    any target exists. If any step fails, the targets this call created are removed again
    and no temporary is left: the folders are as they were (a target replaced with overwrite
    keeps its new content). See `atomic_write` for overwrite, mode and make_folder.

    journal (a hidden `.NAME.pending` path; without overwrite): while the targets are put in
    place, a note of them lies there, so that if the process is killed between two of them,
    `undo_interrupted` removes those it had placed (and only those: they are recognised by
    their file identity, not their name)."""
    items = [(Path(path), write) for path, write in items]
    staged: list[tuple[str, Path]] = []
    placed: list[Path] = []
    journal = Path(journal) if journal is not None and not overwrite else None
    try:
        for path, write in items:
            if make_folder:
                path.parent.mkdir(parents=True, exist_ok=True)
            if not overwrite and path.exists():
                raise _exists_error(path)
            staged.append((_stage(path, write, mode), path))
        if journal is not None:
            note = [[str(path), os.stat(tmp).st_ino] for tmp, path in staged]
            os.replace(_stage(journal, lambda f: f.write(json.dumps(note).encode()), None), journal)
        for tmp, path in staged:
            if overwrite:
                created = not os.path.lexists(path)
                os.replace(tmp, path)
                if created:  # new with overwrite too: removed again if a later one fails
                    placed.append(path)
            else:
                _place_new(tmp, path)
                placed.append(path)
    except BaseException:
        for tmp, _ in staged:
            _unlink(tmp)
        for path in placed:
            _unlink(path)
        if journal is not None:
            _unlink(journal)
        raise
    for folder in {path.parent for path, _ in items}:
        _fsync_dir(folder)
    if journal is not None:
        _unlink(journal)
    return [path for path, _ in items]


def undo_interrupted(folders: Iterable[str | os.PathLike]) -> list[Path]:
    """Finish what a killed `atomic_write_all` left: for each journal in `folders`, remove the
    targets it had already put in place (the same files, by identity: a file someone else
    put there meanwhile stays), then the journal. Returns the files removed. Call it where
    no writer of those folders runs (at start, under the game's lock): a journal lives only
    while its writer links its files into place."""
    removed = []
    for d in map(Path, folders):
        if not d.is_dir():
            continue
        for journal in d.glob(JOURNAL_GLOB):
            try:
                note = json.loads(journal.read_bytes())
                entries = [(Path(path), int(ino)) for path, ino in note]
            except (OSError, ValueError, TypeError):
                entries = []
            for path, ino in entries:
                try:
                    if os.lstat(path).st_ino == ino:
                        path.unlink()
                        removed.append(path)
                except OSError:  # not placed, or gone
                    pass
            _unlink(journal)
    return removed


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _stage(path: Path, write: Callable[[BinaryIO], None], mode: int | None) -> str:
    """A temporary file beside `path` holding what `write` wrote, flushed to disk."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); an asset should be as readable as the old one
        # or as a normal new file, or a web server may not serve it.
        if mode is None:
            try:
                mode = path.stat().st_mode & 0o777
            except OSError:
                mode = 0o644
        os.chmod(tmp, mode)
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _place_new(tmp: str, path: Path) -> None:
    try:
        os.link(tmp, path)  # atomic and fails if the name is taken
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:
        # No hard links here (FAT, some network shares): check, then rename.
        if path.exists():
            raise _exists_error(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False,
                       mode: int | None = None, make_folder: bool = True) -> Path:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data), overwrite, mode, make_folder)


def remove_stale_temporaries(folders: Iterable[str | os.PathLike], min_age: float = 60.0) -> list[Path]:
    """Remove our temporaries (`.XXXX.tmp`) older than `min_age` seconds from `folders`: what
    a killed writer left. Younger ones may belong to a write in progress and stay."""
    removed = []
    now = time.time()
    for d in map(Path, folders):
        if not d.is_dir():
            continue
        for p in d.glob(TEMP_GLOB):
            try:
                if p.is_file() and now - p.stat().st_mtime >= min_age:
                    p.unlink()
                    removed.append(p)
            except OSError:  # removed meanwhile, or not ours to remove
                pass
    return removed
