"""`rmmv-gan install-plugin GAME`: put the RPG Maker plugin into a game and switch it on.

The plugin has one source, `js_plugin/RmmvGan.js`; the wheel carries a copy made at build
time (setup.py) as `rmmv_gan/plugin/RmmvGan.js`. The parameter names, defaults and
description written into `js/plugins.js` are read from the plugin's own header, as the
editor's Plugin Manager reads them, so the two cannot drift apart.

`js/plugins.js` is the editor's file (`var $plugins = [ {...}, ... ];`, one entry a line).
Only the plugin's own entry is written; every other entry keeps its bytes and its place, and
the text between entries is kept (a UTF-8 BOM too). The statement is looked for in the code
only, never in comments or strings (`// old: var $plugins = [ ];`), and the result is checked
by parsing it again before it is put in place atomically, so a failure leaves the game as it
was. js/plugins.js is written last: the plugin is switched on only once its files are there.

The token is written into js/plugins.js only when asked for (`--token`): the file ships with
the game, and in test play the plugin reads GAME/rmmv_gan/server.json itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .game import GameFolder, atomic_write_bytes

PLUGIN_NAME = "RmmvGan"
PLACEHOLDER_FACE = "RmmvGan_New"  # must match the plugin's placeholderFace default
_ARRAY_START = re.compile(r"\$plugins\s*=\s*\[")
# What is not code in JavaScript: comments and string literals (a regex literal holding one
# of these is not expected in plugins.js).
_NOT_CODE = re.compile(r"""//[^\n]*|/\*.*?(?:\*/|\Z)|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`""", re.S)
BOM = "\ufeff"


class PluginInstallError(ValueError):
    """A game whose js/plugins.js cannot be read safely, or a missing plugin source."""


# --------------------------------------------------------------------------- the plugin file

def plugin_source() -> bytes:
    """The plugin's text: the copy inside the installed package, else the checkout's source."""
    packaged = resources.files("rmmv_gan").joinpath("plugin", f"{PLUGIN_NAME}.js")
    if packaged.is_file():
        return packaged.read_bytes()
    checkout = Path(__file__).resolve().parents[1] / "js_plugin" / f"{PLUGIN_NAME}.js"
    if checkout.is_file():
        return checkout.read_bytes()
    raise PluginInstallError(f"the plugin file {PLUGIN_NAME}.js is missing from this installation "
                             f"(looked in the package and in {checkout.parent})")


@dataclass
class PluginHeader:
    description: str
    defaults: dict  # parameter name -> default text, in header order


def read_header(source: str) -> PluginHeader:
    """@plugindesc and the @param defaults of the first `/*:` block. @arg lines of @command
    blocks are not parameters, so parameters end where the first @command begins."""
    m = re.search(r"/\*:(.*?)\*/", source, re.S)
    if not m:
        raise PluginInstallError("the plugin has no /*: header block")
    description, defaults, current = "", {}, None
    for raw in m.group(1).splitlines():
        line = raw.strip().lstrip("*").strip()
        tag, _, value = line.partition(" ")
        value = value.strip()
        if tag == "@plugindesc":
            description = value
        elif tag == "@param":
            current = value
            defaults[current] = ""
        elif tag == "@default" and current is not None:
            defaults[current] = value
        elif tag == "@command":
            current = None
            break
    return PluginHeader(description, defaults)


# --------------------------------------------------------------------------- plugins.js

@dataclass
class PluginsFile:
    text: str
    entries: list  # (start, end, parsed entry) spans into text
    close: int  # index of the closing ']'


def _code_only(text: str) -> str:
    """`text` with comments and strings blanked out, keeping every offset."""
    return _NOT_CODE.sub(lambda m: " " * len(m.group(0)), text)


def parse_plugins_js(text: str) -> PluginsFile:
    """Find each entry of `var $plugins = [...]` and where its text lies."""
    found = list(_ARRAY_START.finditer(_code_only(text)))
    if not found:
        raise PluginInstallError("no `var $plugins = [` in it (outside comments)")
    if len(found) > 1:
        raise PluginInstallError(f"{len(found)} `$plugins = [` statements in it (lines "
                                 f"{', '.join(str(text.count(chr(10), 0, m.start()) + 1) for m in found)})")
    m = found[0]
    decoder = json.JSONDecoder()
    entries, i = [], m.end()
    while True:
        i = _skip_space(text, i)
        if i >= len(text):
            raise PluginInstallError("the $plugins list is not closed with ]")
        if text[i] == "]" and not entries:
            return PluginsFile(text, entries, i)
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise PluginInstallError(f"entry {len(entries) + 1} is not JSON ({exc.msg} at line "
                                     f"{text.count(chr(10), 0, exc.pos) + 1})") from None
        except RecursionError:
            raise PluginInstallError(f"entry {len(entries) + 1} is nested too deeply to read (line "
                                     f"{text.count(chr(10), 0, i) + 1})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise PluginInstallError(f"entry {len(entries) + 1} is not a plugin entry with a name")
        entries.append((i, end, obj))
        i = _skip_space(text, end)
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        if i < len(text) and text[i] == "]":
            return PluginsFile(text, entries, i)
        raise PluginInstallError(f"expected , or ] after entry {len(entries)} (line "
                                 f"{text.count(chr(10), 0, i) + 1})")


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n\ufeff":
        i += 1
    return i


NEW_PLUGINS_JS = "// Generated by RPG Maker.\n// Do not edit this file directly.\nvar $plugins =\n[\n];\n"


def updated_plugins_js(text: str, header: PluginHeader, fill: dict) -> str:
    """`text` (without its BOM) with the plugin's entry added at the end or updated where it is.

    The entry is switched on; its parameters are the header's, keeping the values the user
    set, then `fill` (URL, token) over them. Parameters the header no longer has are dropped,
    as the editor drops them."""
    parsed = parse_plugins_js(text)
    nl = "\r\n" if "\r\n" in text else "\n"
    old = next((e for e in parsed.entries if e[2]["name"] == PLUGIN_NAME), None)
    kept = old[2].get("parameters", {}) if old else {}
    kept = kept if isinstance(kept, dict) else {}
    params = {k: str(kept.get(k, v)) if kept.get(k) is not None else v for k, v in header.defaults.items()}
    params.update({k: v for k, v in fill.items() if v is not None and k in params})
    entry = json.dumps({"name": PLUGIN_NAME, "status": True, "description": header.description,
                        "parameters": params}, ensure_ascii=False, separators=(",", ":"))
    if old:
        out = text[: old[0]] + entry + text[old[1]:]
    elif parsed.entries:
        end = parsed.entries[-1][1]
        out = text[:end] + "," + nl + entry + text[end:]
    else:
        out = text[: parsed.close].rstrip(" \t\r\n") + nl + entry + nl + text[parsed.close:]
    check = parse_plugins_js(out)  # never write what cannot be read back
    if not any(e[2]["name"] == PLUGIN_NAME and e[2].get("status") is True for e in check.entries):
        raise PluginInstallError("the updated list does not hold the plugin's entry")
    return out


# --------------------------------------------------------------------------- install

def read_server_json(folder: GameFolder) -> dict:
    path = folder.data_dir / "server.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def placeholder_face_png() -> bytes:
    """A 576 x 288 face sheet of eight numbered grey cells: the name to pick in Show Text
    when the face should be the latest generated one (the plugin swaps it at run time)."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (576, 288), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for i in range(8):
        x, y = (i % 4) * 144, (i // 4) * 144
        draw.rounded_rectangle((x + 8, y + 8, x + 135, y + 135), radius=16, fill=(90, 90, 110, 255),
                               outline=(230, 230, 240, 255), width=3)
        draw.ellipse((x + 44, y + 26, x + 100, y + 82), fill=(170, 170, 190, 255))
        draw.rounded_rectangle((x + 30, y + 88, x + 114, y + 130), radius=18, fill=(170, 170, 190, 255))
        draw.text((x + 16, y + 14), f"new {i}", fill=(255, 255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def install_plugin(game, url: str | None = None, token: str | None = None) -> dict:
    """Copy the plugin into GAME/js/plugins/, write the placeholder face if absent, then add
    or update its js/plugins.js entry. URL: the argument, else GAME/rmmv_gan/server.json's
    (written by `rmmv-gan serve`), else what the entry holds. Token: the argument, else what
    the entry holds; never server.json's, which stays out of the shipped game.
    Returns {what: path} of the files written or kept."""
    folder = game if isinstance(game, GameFolder) else GameFolder(game)
    source = plugin_source()
    header = read_header(source.decode("utf-8"))
    server = read_server_json(folder)
    fill = {"serverUrl": url or server.get("url"), "token": token}
    js = folder.base / "js"
    plugins_js = js / "plugins.js"
    try:
        raw = plugins_js.read_bytes().decode("utf-8") if plugins_js.exists() else NEW_PLUGINS_JS
    except UnicodeDecodeError:
        raise PluginInstallError(f"{plugins_js}: not UTF-8 text") from None
    bom = BOM if raw.startswith(BOM) else ""
    text = raw[len(bom):]
    try:
        new_text = updated_plugins_js(text, header, fill)
    except PluginInstallError as exc:
        raise PluginInstallError(f"{plugins_js}: {exc}; fix it in the editor's Plugin Manager "
                                 f"or by hand, nothing was changed") from None
    target = js / "plugins" / f"{PLUGIN_NAME}.js"
    face = folder.faces_dir / f"{PLACEHOLDER_FACE}.png"
    if not face.exists():
        atomic_write_bytes(face, placeholder_face_png())
    if not target.exists() or target.read_bytes() != source:
        atomic_write_bytes(target, source, overwrite=True)
    if new_text != text or not plugins_js.exists():  # last: switched on once its files are in place
        atomic_write_bytes(plugins_js, (bom + new_text).encode("utf-8"), overwrite=True)
    return {"plugin": target, "plugins.js": plugins_js, "placeholder": face}
