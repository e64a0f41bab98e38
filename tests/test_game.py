"""Game folders, asset names and writes that never leave a torn or stray file."""

import os

import numpy as np
import pytest
from PIL import Image

from rmmv_gan import game as game_mod
from rmmv_gan.game import (
    AssetExistsError, AssetNameError, GameFolder, GameFolderError, asset_filename,
    atomic_write_bytes, safe_asset_name, unique_name, write_character, write_faces, write_png,
)


def make_project(root, *markers):
    for m in markers:
        p = root / m
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("// marker\n")
    return root


@pytest.fixture
def mv(tmp_path):
    g = GameFolder(make_project(tmp_path / "game", "js/rpg_core.js"))
    g.characters_dir.mkdir(parents=True)
    g.faces_dir.mkdir(parents=True)
    return g


def sheet(seed=0, h=192, w=144):
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    a[..., 3] = np.where(a[..., 3] > 127, 255, 0)
    return a


def files(folder):
    """Everything in a folder, hidden temporaries included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- detection

@pytest.mark.parametrize("marker, kind", [
    ("js/rpg_core.js", "MV"), ("Game.rpgproject", "MV"),
    ("js/rmmz_core.js", "MZ"), ("game.rmmzproject", "MZ"),
])
def test_engine_is_detected_from_its_marker_files(tmp_path, marker, kind):
    assert GameFolder(make_project(tmp_path, marker)).kind == kind


def test_project_file_is_found_whatever_its_case(tmp_path):
    assert GameFolder(make_project(tmp_path, "game.RPGPROJECT")).kind == "MV"


def test_deployed_mv_game_in_www_is_accepted(tmp_path):
    g = GameFolder(make_project(tmp_path, "www/js/rpg_core.js"))
    assert g.kind == "MV"
    assert g.characters_dir == tmp_path.resolve() / "www" / "img" / "characters"


def test_image_folders_are_under_img(tmp_path):
    g = GameFolder(make_project(tmp_path, "js/rmmz_core.js"))
    root = tmp_path.resolve()
    assert g.characters_dir == root / "img" / "characters"
    assert g.faces_dir == root / "img" / "faces"
    assert g.data_dir == root / "rmmv_gan"


def test_folder_that_is_neither_mv_nor_mz_is_refused_saying_what_was_looked_for(tmp_path):
    make_project(tmp_path, "index.html", "js/main.js")
    with pytest.raises(GameFolderError) as e:
        GameFolder(tmp_path)
    message = str(e.value)
    for looked_for in ("js/rpg_core.js", "Game.rpgproject", "js/rmmz_core.js", "game.rmmzproject"):
        assert looked_for in message
    assert "not an RPG Maker MV or MZ project" in message


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(GameFolderError, match="does not exist"):
        GameFolder(tmp_path / "nope")


def test_both_core_scripts_is_refused(tmp_path):
    with pytest.raises(GameFolderError, match="both"):
        GameFolder(make_project(tmp_path, "js/rpg_core.js", "js/rmmz_core.js"))


def test_core_script_decides_over_a_stale_project_file(tmp_path):
    assert GameFolder(make_project(tmp_path, "Game.rpgproject", "js/rmmz_core.js")).kind == "MZ"


# --------------------------------------------------------------------------- names

HOSTILE = {
    "parent": "../x",
    "slash": "a/b",
    "backslash": "a\\b",
    "con": "CON",
    "nul_ext": "nul.png",
    "com1_lower": "com1",
    "long": "x" * 300,
    "empty": "",
    "newline": "a\nb",
    "nul_char": "a\x00b",
    "del_char": "a\x7fb",
    "rtl_override": "abc\u202egnp",
    "dots": "..",
    "trailing_dot": "hero.",
    "trailing_space": "hero ",
    "colon": "c:hero",
    "star": "he*ro",
    "dollar": "$hero",
    "bang": "!door",
    "hidden": ".hero",
}


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_names_are_refused(name):
    with pytest.raises(AssetNameError):
        safe_asset_name(name)


@pytest.mark.parametrize("name, words", [
    ("../x", "'..'"), ("a/b", "path separators"), ("CON", "reserved"), ("nul.png", "reserved"),
    ("x" * 300, "limit is 100"), ("", "empty"), ("a\nb", "U+000A"), ("$hero", "added by"),
], ids=["parent", "slash", "con", "nul_ext", "long", "empty", "newline", "dollar"])
def test_refusals_say_why(name, words):
    with pytest.raises(AssetNameError) as e:
        safe_asset_name(name)
    assert words in str(e.value)


@pytest.mark.parametrize("name", ["Hero", "npc_01", "Old Man", "勇者", "Élise-2", "v1.2"])
def test_ordinary_names_pass_unchanged(name):
    assert safe_asset_name(name) == name


def test_file_name_gets_the_sheet_prefix_and_extension():
    assert asset_filename("Hero", "!$") == "!$Hero.png"


def test_file_name_over_255_bytes_is_refused():
    with pytest.raises(AssetNameError, match="255 bytes"):
        asset_filename("勇" * 90)  # 90 characters, 270 bytes in UTF-8


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_names_write_nothing(tmp_path, mv, name):
    with pytest.raises(AssetNameError):
        write_character(mv, name, sheet())
    with pytest.raises(AssetNameError):
        write_faces(mv, name, sheet(h=288, w=576))
    assert files(mv.characters_dir) == [] and files(mv.faces_dir) == []
    assert files(tmp_path) == ["game"] and files(mv.base / "img") == ["characters", "faces"]


# --------------------------------------------------------------------------- writes

def test_character_is_written_as_a_dollar_sheet_with_the_same_pixels(mv):
    s = sheet(1)
    path = write_character(mv, "Hero", s)
    assert path == mv.characters_dir / "$Hero.png"
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im), s)


def test_object_and_eight_character_sheets_get_their_prefixes(mv):
    assert write_character(mv, "Door", sheet(), obj=True).name == "!$Door.png"
    assert write_character(mv, "Town", sheet(h=384, w=576), single=False).name == "Town.png"


def test_sheet_of_the_wrong_shape_is_refused(mv):
    with pytest.raises(ValueError, match="3 x 4"):
        write_character(mv, "Hero", sheet(h=190))
    with pytest.raises(ValueError, match="576 x 288"):
        write_faces(mv, "Hero", sheet(h=144, w=576))
    assert files(mv.characters_dir) == [] and files(mv.faces_dir) == []


def test_faces_are_written_without_prefix(mv):
    path = write_faces(mv, "Hero", sheet(2, 288, 576))
    assert path == mv.faces_dir / "Hero.png"


def test_existing_asset_is_not_overwritten_silently(mv):
    first = write_character(mv, "Hero", sheet(1)).read_bytes()
    with pytest.raises(AssetExistsError, match="overwrite=True") as e:
        write_character(mv, "Hero", sheet(2))
    assert isinstance(e.value, FileExistsError)
    assert (mv.characters_dir / "$Hero.png").read_bytes() == first
    assert files(mv.characters_dir) == ["$Hero.png"]


def test_overwrite_replaces_the_asset(mv):
    write_character(mv, "Hero", sheet(1))
    path = write_character(mv, "Hero", sheet(2), overwrite=True)
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im), sheet(2))


def test_unique_picks_the_next_free_suffix(mv):
    write_character(mv, "Hero", sheet(1))
    assert write_character(mv, "Hero", sheet(2), unique=True).name == "$Hero_2.png"
    assert write_character(mv, "Hero", sheet(3), unique=True).name == "$Hero_3.png"


def test_names_differing_only_in_case_count_as_taken(mv):
    write_character(mv, "hero", sheet(1))
    with pytest.raises(AssetExistsError):
        write_character(mv, "HERO", sheet(2))
    assert unique_name(mv.characters_dir, "HERO", "$") == "HERO_2"


def test_a_new_asset_is_readable_like_any_file(mv):
    path = write_character(mv, "Hero", sheet())
    if os.name == "posix":
        assert path.stat().st_mode & 0o044 == 0o044  # not the temp file's private 0600


def test_atomic_write_bytes_replaces_only_when_asked(tmp_path):
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"one")
    with pytest.raises(AssetExistsError):
        atomic_write_bytes(p, b"two")
    atomic_write_bytes(p, b"three", overwrite=True)
    assert p.read_bytes() == b"three" and files(tmp_path) == ["a.bin"]


def failing_save(self, fp, *args, **kwargs):
    """An encoder that dies half-way: some bytes reach the file, then an error."""
    fp.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 1000)
    raise OSError("encoder failed half-way")


def test_failed_encoding_leaves_no_file_and_no_temp(mv, monkeypatch):
    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="half-way"):
        write_character(mv, "Hero", sheet())
    assert files(mv.characters_dir) == []


def test_failed_overwrite_keeps_the_old_file_whole(mv, monkeypatch):
    old = write_character(mv, "Hero", sheet(1)).read_bytes()
    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError):
        write_character(mv, "Hero", sheet(2), overwrite=True)
    assert files(mv.characters_dir) == ["$Hero.png"]
    assert (mv.characters_dir / "$Hero.png").read_bytes() == old


def test_failure_while_putting_in_place_leaves_no_temp(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise PermissionError("file is locked by the editor")

    monkeypatch.setattr(game_mod.os, "replace", broken_replace)
    (tmp_path / "x.png").write_bytes(b"old")
    with pytest.raises(PermissionError):
        write_png(tmp_path / "x.png", sheet(), overwrite=True)
    assert files(tmp_path) == ["x.png"] and (tmp_path / "x.png").read_bytes() == b"old"


def test_write_png_adds_alpha_to_rgb(tmp_path):
    rgb = sheet()[..., :3].copy()
    with Image.open(write_png(tmp_path / "f.png", rgb)) as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im)[..., :3], rgb)
