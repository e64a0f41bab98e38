"""An RPG Maker MV / MZ game folder: detection, image folders, safe asset names, when a name
is taken, and what is written for a character.

Every transport (export, the daemon, the watcher) asks `taken` whether a name is free and
writes with `save_character`, whose `SavedCharacter.result` is what each of them reports.
Writes are atomic (rmmv_gan.fileio).
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .fileio import TargetExistsError, atomic_write, atomic_write_all, atomic_write_bytes

__all__ = [
    "GameFolderError", "AssetNameError", "AssetExistsError", "GameFolder", "safe_asset_name",
    "asset_filename", "unique_name", "atomic_write", "atomic_write_bytes", "write_png",
    "write_character", "write_faces", "MAX_NAME_LENGTH", "name_key", "taken", "character_files",
    "save_character", "SavedCharacter", "character_set_files", "save_character_set", "character_name",
    "make_folders",
]

MAX_NAME_LENGTH = 100
# Most file systems cap a name at 255 bytes (ext4, APFS) or UTF-16 units (NTFS).
_MAX_FILENAME_BYTES = 255

_MV_MARKERS = ("js/rpg_core.js", "Game.rpgproject")
_MZ_MARKERS = ("js/rmmz_core.js", "game.rmmzproject")

_FORBIDDEN = set('<>:"/\\|?*')
_RESERVED = ({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
             | {f"{p}{i}" for p in ("COM", "LPT") for i in list("123456789") + ["¹", "²", "³"]})


class GameFolderError(ValueError):
    """The folder is not an RPG Maker MV or MZ project."""


class AssetNameError(ValueError):
    """A name that cannot safely become an asset file name."""


# The asset exists and neither overwrite nor a unique name was asked for. One class with the
# atomic writer's, so that a name taken between the check and the write is caught the same way.
AssetExistsError = TargetExistsError


# --------------------------------------------------------------------------- game folder

def _exists_nocase(base: Path, rel: str) -> bool:
    """Does base/rel exist, matching each part case-insensitively? Projects move between
    Windows (case-insensitive) and Linux, and `Game.rpgproject` may arrive as `game.rpgproject`."""
    here = base
    for part in rel.split("/"):
        if (here / part).exists():
            here = here / part
            continue
        try:
            match = [p for p in here.iterdir() if p.name.lower() == part.lower()]
        except OSError:
            return False
        if not match:
            return False
        here = match[0]
    return True


class GameFolder:
    """An MV or MZ project folder.

    MV if it has `js/rpg_core.js` or `Game.rpgproject`, MZ if `js/rmmz_core.js` or
    `game.rmmzproject`. A deployed MV game for NW.js keeps the game in `www/`; such a folder
    is accepted too and `base` is then `root/www`. Where both engines' files are present, the
    core script decides (it is what runs); both core scripts at once is refused.
    """

    def __init__(self, path: str | os.PathLike):
        self.root = Path(path).expanduser().resolve()
        if not self.root.is_dir():
            raise GameFolderError(f"game folder {self.root} does not exist or is not a folder")
        for base in (self.root, self.root / "www"):
            kind = self._detect(base)
            if kind:
                self.base, self.kind = base, kind
                return
        looked = ", ".join(_MV_MARKERS) + " (MV); " + ", ".join(_MZ_MARKERS) + " (MZ)"
        raise GameFolderError(
            f"{self.root} is not an RPG Maker MV or MZ project: looked for {looked}, "
            f"in the folder and in its www/ subfolder, and found none")

    def _detect(self, base: Path) -> str | None:
        if not base.is_dir():
            return None
        mv_core, mz_core = _exists_nocase(base, _MV_MARKERS[0]), _exists_nocase(base, _MZ_MARKERS[0])
        if mv_core and mz_core:
            raise GameFolderError(f"{base} holds both {_MV_MARKERS[0]} (MV) and {_MZ_MARKERS[0]} "
                                  f"(MZ); cannot tell which engine the game runs")
        if mv_core or mz_core:
            return "MV" if mv_core else "MZ"
        mv, mz = _exists_nocase(base, _MV_MARKERS[1]), _exists_nocase(base, _MZ_MARKERS[1])
        if mv and mz:
            raise GameFolderError(f"{base} holds both {_MV_MARKERS[1]} and {_MZ_MARKERS[1]} and "
                                  f"no core script; cannot tell MV from MZ")
        return "MV" if mv else "MZ" if mz else None

    @property
    def characters_dir(self) -> Path:
        return self.base / "img" / "characters"

    @property
    def faces_dir(self) -> Path:
        return self.base / "img" / "faces"

    @property
    def data_dir(self) -> Path:
        """rmmv-gan's own files (requests, presets) inside the game."""
        return self.base / "rmmv_gan"

    def __repr__(self) -> str:
        return f"GameFolder({str(self.root)!r}, kind={self.kind!r})"


# --------------------------------------------------------------------------- names

def safe_asset_name(name: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """`name` unchanged if it can be an asset file name on Windows, macOS, Linux and the web,
    else AssetNameError saying why. Nothing is silently altered: a name the user typed is the
    name the editor shows. The `$` / `!` prefixes belong to the sheet kind and are added by
    the writer, so a name may not start with them."""
    if not isinstance(name, str):
        raise AssetNameError(f"asset name must be text, got {type(name).__name__}")
    if not name:
        raise AssetNameError("asset name is empty")
    if len(name) > max_length:
        raise AssetNameError(f"asset name is {len(name)} characters long; the limit is {max_length}")
    bad = sorted({c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")})
    if bad:
        shown = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise AssetNameError(f"asset name {name!r} contains control or invisible characters ({shown})")
    if ".." in name:
        raise AssetNameError(f"asset name {name!r} contains '..', which can lead out of the "
                             f"image folder")
    bad = sorted(set(name) & _FORBIDDEN)
    if bad:
        raise AssetNameError(f"asset name {name!r} contains {' '.join(bad)}; path separators and "
                             f"the characters < > : \" / \\ | ? * are not allowed in file names")
    if name.startswith("."):
        raise AssetNameError(f"asset name {name!r} starts with '.' (a hidden file)")
    if name[-1] in ". ":
        raise AssetNameError(f"asset name {name!r} ends with a dot or a space, which Windows drops")
    if name[0] in "$!":
        raise AssetNameError(f"asset name {name!r} starts with {name[0]!r}; the '$' (one character) "
                             f"and '!' (object) prefixes are added by the sheet kind, give the "
                             f"name without them")
    stem = name.split(".")[0].rstrip(" ").upper()
    if stem in _RESERVED:
        raise AssetNameError(f"asset name {name!r} is a reserved device name on Windows ({stem})")
    return name


# The longest file name a character's name becomes: `$NAME.png`, `NAME.json`, `NAME.gif`.
_LONGEST_SUFFIX = max(("$", ".png"), ("", ".json"), ("", ".gif"), key=lambda p: len(p[0] + p[1]))


def character_name(name: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """`name` as a character is saved under: in Unicode NFC (macOS hands names over
    decomposed; one form on disk keeps `taken` and the files in step), checked by
    `safe_asset_name`, and short enough in bytes for the longest file made from it (most file
    systems cap a name at 255 bytes; UTF-8 never takes fewer bytes than NTFS's UTF-16 units)."""
    if isinstance(name, str):
        name = unicodedata.normalize("NFC", name)
    safe_asset_name(name, max_length)
    prefix, ext = _LONGEST_SUFFIX
    longest = prefix + name + ext
    if len(longest.encode("utf-8")) > _MAX_FILENAME_BYTES:
        raise AssetNameError(f"asset name is {len(name.encode('utf-8'))} bytes long in UTF-8; its longest file "
                             f"name, {prefix}NAME{ext}, would be {len(longest.encode('utf-8'))} bytes, more than "
                             f"the {_MAX_FILENAME_BYTES} file systems allow (use a shorter name)")
    return name


def asset_filename(name: str, prefix: str = "", ext: str = ".png") -> str:
    """The file name for an asset: prefix + checked name + extension."""
    if prefix.strip("$!"):
        raise AssetNameError(f"prefix may only hold '$' and '!', got {prefix!r}")
    filename = prefix + safe_asset_name(name) + ext
    if len(filename.encode("utf-8")) > _MAX_FILENAME_BYTES:
        raise AssetNameError(f"file name {filename!r} is longer than {_MAX_FILENAME_BYTES} bytes")
    return filename


def name_key(name: str) -> str:
    """What two file names share when Windows or macOS see them as one file: the same letters
    in any case (`$Hero.png`, `$hero.png`) and any Unicode normal form (`é` as one code point,
    or `e` and a combining accent, as macOS file names often arrive)."""
    return unicodedata.normalize("NFC", name).casefold()


def existing(path: str | os.PathLike) -> Path | None:
    """The file in path's folder that is path under the taken rule (`name_key`), or None."""
    path = Path(path)
    try:
        entries = list(path.parent.iterdir())
    except OSError:  # no folder yet: nothing in it is taken
        return None
    key = name_key(path.name)
    return next((p for p in entries if name_key(p.name) == key), None)


def first_existing(paths) -> Path | None:
    """The first of `paths` that is taken (see `existing`), or None."""
    return next((found for found in map(existing, paths) if found is not None), None)


def unique_name(folder: str | os.PathLike, name: str, prefix: str = "", ext: str = ".png") -> str:
    """`name`, or `name_2`, `name_3`, ... : the first whose file is free in `folder` under the
    taken rule (`name_key`), so a project copied to Windows or macOS keeps all its sheets."""
    folder = Path(folder)
    used = {name_key(p.name) for p in folder.iterdir()} if folder.is_dir() else set()
    candidate, n = name, 1
    while name_key(asset_filename(candidate, prefix, ext)) in used:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _image(array: np.ndarray) -> Image.Image:
    a = np.asarray(array)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"image must be a uint8 H x W x 3 or H x W x 4 array, got {a.dtype} {a.shape}")
    if a.shape[2] == 3:  # the game expects PNGs with alpha
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return Image.fromarray(np.ascontiguousarray(a), "RGBA")


def _png_writer(array: np.ndarray):
    """A writer (f) -> None that encodes an RGB(A) array as an RGBA PNG into f."""
    image = _image(array)
    return lambda f: image.save(f, format="PNG")


def write_png(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False, make_folder: bool = True) -> Path:
    """Encode an RGB(A) array as an RGBA PNG straight into the temporary file and put it in
    place atomically."""
    return atomic_write(path, _png_writer(array), overwrite, make_folder=make_folder)


# --------------------------------------------------------------------------- assets

def _write_asset(game, folder: Path, name: str, prefix: str, array: np.ndarray, overwrite: bool,
                 unique: bool) -> Path:
    if overwrite and unique:
        raise ValueError("choose overwrite or unique, not both")
    filename = asset_filename(name, prefix)  # refuse a bad name before anything touches the disk
    if not overwrite and not unique:
        # Windows and macOS see `$Hero.png` and `$hero.png` as one file: a project copied
        # there would lose one of them.
        clash = existing(folder / filename)
        if clash is not None:
            raise AssetExistsError(f"{clash} already exists; pass overwrite=True to "
                                   f"replace it or ask for a unique name")
    make_folders(game, [folder / filename])
    while True:
        chosen = unique_name(folder, name, prefix) if unique else name
        try:
            return write_png(folder / asset_filename(chosen, prefix), array, overwrite, make_folder=False)
        except AssetExistsError:
            if not unique:
                raise
            # another writer took the name between the check and the write: try the next


def write_character(game: GameFolder, name: str, sheet: np.ndarray, *, single: bool = True,
                    obj: bool = False, overwrite: bool = False, unique: bool = False) -> Path:
    """Write a walk sheet into img/characters and return its path (its stem is the name to
    give the game).

    single: a one-character sheet (3 x 4 frames), written as `$NAME.png`; False for an
    8-character sheet (12 x 8 frames), `NAME.png`. obj: an object sprite, `!` in front (no
    6-px lift). An existing file raises AssetExistsError unless overwrite=True, or
    unique=True picks `NAME_2`, `NAME_3`, ...
    """
    a = np.asarray(sheet)
    cols, rows = (3, 4) if single else (12, 8)
    h, w = a.shape[:2] if a.ndim == 3 else (0, 0)
    if h == 0 or w == 0 or h % rows or w % cols:
        what = "a one-character sheet" if single else "an 8-character sheet"
        raise ValueError(f"{what} must be an image that divides into {cols} x {rows} frames; "
                         f"got an array of shape {a.shape}")
    prefix = ("!" if obj else "") + ("$" if single else "")
    return _write_asset(game, game.characters_dir, name, prefix, a, overwrite, unique)


def write_faces(game: GameFolder, name: str, sheet: np.ndarray, *, overwrite: bool = False,
                unique: bool = False) -> Path:
    """Write a 576 x 288 face sheet (faceIndex 0-7) as img/faces/NAME.png; see
    `write_character` for overwrite and unique."""
    a = np.asarray(sheet)
    if a.shape[:2] != (288, 576):
        raise ValueError(f"a face sheet must be 576 x 288 (4 x 2 faces of 144 px, as the game "
                         f"draws them); got {a.shape[1] if a.ndim > 1 else '?'} x {a.shape[0]}")
    return _write_asset(game, game.faces_dir, name, "", a, overwrite, unique)


# --------------------------------------------------------------------------- characters

class OutputFolder:
    """A plain folder laid out like a game (`img/characters`, `img/faces`, `rmmv_gan/`), for
    sheets made outside a project."""

    def __init__(self, path: str | os.PathLike):
        self.root = self.base = Path(path).expanduser().resolve()
        self.kind = None

    characters_dir = GameFolder.characters_dir
    faces_dir = GameFolder.faces_dir
    data_dir = GameFolder.data_dir


def character_files(folder, name: str) -> dict:
    """Where a character named `name` goes: walk sheet, face sheet, metadata (the name as
    `character_name` gives it: NFC, checked)."""
    name = character_name(name)
    return {"character": folder.characters_dir / asset_filename(name, "$"),
            "faces": folder.faces_dir / asset_filename(name),
            "metadata": folder.data_dir / "characters" / asset_filename(name, ext=".json")}


def taken(folder, name: str) -> Path | None:
    """The file that makes `name` taken for a character in `folder` (a GameFolder or an
    OutputFolder), or None if it is free. The one rule every transport uses: a name is taken
    when any of its files exists under another case or Unicode form (`name_key`), as Windows
    and macOS see names, so a project moved there never loses a sheet."""
    return first_existing(character_files(folder, name).values())


def make_folders(folder, paths) -> None:
    """Create the folders `paths` go into, below `folder.base` only and never the base itself:
    a game folder deleted (or moved) while a job ran makes the job fail with FileNotFoundError
    instead of rmmv-gan recreating a skeleton of the game at the old path. An OutputFolder
    (`export --out`) is rmmv-gan's to create."""
    base = Path(folder.base)
    for parent in {Path(p).parent for p in paths}:
        if isinstance(folder, OutputFolder):
            parent.mkdir(parents=True, exist_ok=True)
            continue
        if not base.is_dir():
            raise FileNotFoundError(f"the game folder {base} is gone")
        here = base
        for part in parent.relative_to(base).parts:  # one level at a time: never recreates `base`
            here = here / part
            try:
                here.mkdir()
            except FileExistsError:
                pass


def relative_files(folder, paths: dict) -> dict:
    """{kind: path} as the game sees them: relative to its base, with `/`."""
    return {k: str(Path(p).relative_to(folder.base)).replace(os.sep, "/") for k, p in paths.items()}


@dataclass(frozen=True)
class SavedCharacter:
    """What `save_character` wrote: the paths, and the result every transport reports
    (`{"character", "faces", "files", "seed"}`: the names to give the game, the files written
    relative to the game, the seed that made it)."""

    paths: dict
    result: dict

    @classmethod
    def of(cls, folder, name: str, seed: int, paths: dict | None = None) -> "SavedCharacter":
        paths = paths or character_files(folder, name)
        return cls(paths, {"character": paths["character"].stem, "faces": paths["faces"].stem,
                           "files": relative_files(folder, paths), "seed": seed})


def _journal(folder, name: str, kind: str = "") -> Path:
    """The journal of a write of `name`'s files (fileio.atomic_write_all): killed between two
    of its renames, the write leaves it, and the daemon and the watcher undo it when they start
    (jobs.remove_stale_temporaries looks among the characters' metadata), so no orphan makes
    the name taken. Hidden, named by the name's key."""
    return folder.data_dir / "characters" / f".{hashlib.sha256(name_key(name).encode()).hexdigest()[:16]}{kind}.pending"


def save_character(folder, character, *, overwrite: bool = False, preview: bool = False) -> SavedCharacter:
    """Write a pipeline result: `img/characters/$NAME.png`, `img/faces/NAME.png`, and
    `rmmv_gan/characters/NAME.json` (with `NAME.gif`, the walk cycle, if `preview`).

    Every target is checked before anything is written (the `taken` rule), so a name that is
    taken leaves the folder as it was; the files are written as one (fileio.atomic_write_all),
    so a write that fails part way (a read-only img/faces, a full disk) leaves none of them.
    """
    from .sheets import walk_gif

    name = character_name(character.request.name)
    paths = character_files(folder, name)
    if preview:
        paths["preview"] = paths["metadata"].with_suffix(".gif")
    if not overwrite:
        clash = first_existing(paths.values())
        if clash is not None:
            raise AssetExistsError(f"{clash} already exists; use overwrite to replace it")
    make_folders(folder, paths.values())
    saved = SavedCharacter.of(folder, name, character.request.seed, paths)
    meta = (json.dumps(dict(character.metadata, files=saved.result["files"]), indent=2) + "\n").encode("utf-8")
    writes = [(paths["character"], _png_writer(character.walk_sheet)),
              (paths["faces"], _png_writer(character.face_sheet))]
    if preview:
        gif = walk_gif(character.walk_sheet)
        writes.append((paths["preview"], lambda f: f.write(gif)))
    # The metadata last: a run killed between two renames leaves no metadata, which the
    # watcher reads as "not written" (see its _written_before_crash).
    writes.append((paths["metadata"], lambda f: f.write(meta)))
    atomic_write_all(writes, overwrite, make_folder=False, journal=_journal(folder, name))
    return saved


def gallery(folder) -> list[dict]:
    """The characters written into `folder`, newest first, from their metadata files (those
    unreadable or removed meanwhile are left out)."""
    d = folder.data_dir / "characters"
    found = []
    if d.is_dir():
        for p in d.glob("*.json"):
            try:
                found.append((p.stat().st_mtime, p))
            except OSError:  # removed meanwhile
                pass
    out = []
    for _, p in sorted(found, reverse=True):
        try:
            meta = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            continue
        out.append({k: meta.get(k) for k in ("name", "seed", "psi", "archetype", "emotions", "steps", "pack", "files")}
                   | {"character": "$" + meta["name"], "faces": meta["name"]})
    return out


# --------------------------------------------------------------------------- combined sheets

def character_set_files(folder, set_name: str) -> dict:
    """Where a combined set goes: an 8-character sheet and a sheet of 8 neutral faces."""
    return {"characters": folder.characters_dir / asset_filename(set_name),
            "faces": folder.faces_dir / asset_filename(set_name)}


def save_character_set(folder, set_name: str, characters, face_size: int = 144, *,
                       overwrite: bool = False) -> dict:
    """Compose the first 8 characters into one 8-character walk sheet (`img/characters/SET.png`)
    and a face sheet of their first (neutral) faces (`img/faces/SET.png`); returns {kind: path}.
    The two files are written as one, as `save_character` writes a character's."""
    from .sheets import eight_character_sheet, face_sheet

    paths = character_set_files(folder, set_name)
    if not overwrite:
        clash = first_existing(paths.values())
        if clash is not None:
            raise AssetExistsError(f"{clash} already exists; use overwrite to replace it")
    sheet = eight_character_sheet([c.walk_sheet for c in characters[:8]])
    neutral = face_sheet([c.faces[0] for c in characters[:8]], face_size)
    journal = _journal(folder, set_name, ".set")
    make_folders(folder, [*paths.values(), journal])
    atomic_write_all([(paths["characters"], _png_writer(sheet)), (paths["faces"], _png_writer(neutral))],
                     overwrite, make_folder=False, journal=journal)
    return paths
