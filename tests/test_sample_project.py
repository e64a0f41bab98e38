"""sample_project/: valid MV data (the files and fields MV's DataManager and game objects read),
the plugin switched on in js/plugins.js, and the NPC event wired to the plugin."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rmmv_gan.game import GameFolder
from rmmv_gan.plugin_install import PLACEHOLDER_FACE, PLUGIN_NAME, install_plugin, parse_plugins_js, plugin_source, \
    read_header

SAMPLE = Path(__file__).resolve().parents[1] / "sample_project"
DATABASE = ["Actors", "Classes", "Skills", "Items", "Weapons", "Armors", "Enemies", "Troops", "States", "Animations",
            "Tilesets", "CommonEvents", "System", "MapInfos"]  # DataManager._databaseFiles


def load(name):
    return json.loads((SAMPLE / "data" / f"{name}.json").read_text(encoding="utf-8"))


def has(record, keys, what):
    missing = [k for k in keys if k not in record]
    assert not missing, f"{what}: missing {missing}"


@pytest.mark.parametrize("name", DATABASE)
def test_every_database_file_is_a_json_list_or_object(name):
    data = load(name)
    if name == "System":
        assert isinstance(data, dict)
    else:  # index = id, element 0 is null, as the editor writes them
        assert isinstance(data, list) and data[0] is None
        assert all(r is None or (isinstance(r, dict) and r["id"] == i) for i, r in enumerate(data))
        if name != "MapInfos":  # records with a note get their <meta> read; the editor gives all but maps one
            assert all(r is None or "note" in r for r in data)


def test_actors_classes_skills_states():
    actors, classes, skills, states = load("Actors"), load("Classes"), load("Skills"), load("States")
    for a in actors[1:]:
        has(a, ["battlerName", "characterIndex", "characterName", "classId", "equips", "faceIndex", "faceName",
                "traits", "initialLevel", "maxLevel", "name", "nickname", "note", "profile"], f"actor {a['id']}")
        c = classes[a["classId"]]
        has(c, ["expParams", "traits", "learnings", "name", "params"], f"class {c['id']}")
        assert len(c["params"]) == 8 and all(len(p) > a["maxLevel"] for p in c["params"])
    for i in (1, 2):  # attack and guard skills are used by every battler
        has(skills[i], ["animationId", "damage", "effects", "hitType", "mpCost", "name", "occasion", "repeats",
                        "scope", "speed", "stypeId", "successRate", "tpCost", "tpGain", "message1", "message2",
                        "requiredWtypeId1", "requiredWtypeId2"], f"skill {i}")
    has(states[1], ["autoRemovalTiming", "iconIndex", "maxTurns", "minTurns", "priority", "restriction", "traits",
                    "removeAtBattleEnd", "removeByRestriction", "removeByDamage", "removeByWalking", "motion",
                    "overlay", "message1", "message2", "message3", "message4"], "state 1 (knockout)")


def test_system():
    s, actors = load("System"), load("Actors")
    has(s, ["airship", "boat", "ship", "armorTypes", "battleBgm", "currencyUnit", "defeatMe", "elements", "equipTypes",
            "gameTitle", "gameoverMe", "locale", "magicSkills", "menuCommands", "optDisplayTp", "optDrawTitle",
            "optExtraExp", "optFloorDeath", "optFollowers", "optSideView", "optSlipDeath", "optTransparent",
            "partyMembers", "skillTypes", "sounds", "startMapId", "startX", "startY", "switches", "terms",
            "title1Name", "title2Name", "titleBgm", "variables", "versionId", "victoryMe", "weaponTypes",
            "windowTone"], "System")
    assert len(s["sounds"]) == 24 and all(set(x) == {"name", "pan", "pitch", "volume"} for x in s["sounds"])
    t = s["terms"]
    assert len(t["basic"]) == 10 and len(t["commands"]) == 26 and len(t["params"]) == 10
    assert isinstance(t["messages"], dict) and "partyName" in t["messages"]
    assert all(actors[m] for m in s["partyMembers"])
    assert len(s["menuCommands"]) == 6 and len(s["windowTone"]) == 4 and isinstance(s["versionId"], int)


def test_map():
    s, infos, tilesets = load("System"), load("MapInfos"), load("Tilesets")
    assert infos[s["startMapId"]]["name"]
    m = json.loads((SAMPLE / "data" / f"Map{s['startMapId']:03d}.json").read_text(encoding="utf-8"))
    has(m, ["autoplayBgm", "autoplayBgs", "battleback1Name", "battleback2Name", "bgm", "bgs", "disableDashing",
            "displayName", "encounterList", "encounterStep", "height", "note", "parallaxLoopX", "parallaxLoopY",
            "parallaxName", "parallaxShow", "parallaxSx", "parallaxSy", "scrollType", "specifyBattleback",
            "tilesetId", "width", "data", "events"], "Map001")
    assert len(m["data"]) == m["width"] * m["height"] * 6
    assert 0 <= s["startX"] < m["width"] and 0 <= s["startY"] < m["height"]
    ts = tilesets[m["tilesetId"]]
    assert len(ts["flags"]) == 8192 and len(ts["tilesetNames"]) == 9
    assert m["events"][0] is None
    for i, e in enumerate(m["events"][1:], 1):
        has(e, ["id", "name", "note", "pages", "x", "y"], f"event {i}")
        assert e["id"] == i and 0 <= e["x"] < m["width"] and 0 <= e["y"] < m["height"]
        for p in e["pages"]:
            has(p, ["conditions", "directionFix", "image", "list", "moveFrequency", "moveRoute", "moveSpeed",
                    "moveType", "priorityType", "stepAnime", "through", "trigger", "walkAnime"], f"event {i} page")
            has(p["image"], ["tileId", "characterName", "direction", "pattern", "characterIndex"], "image")
            assert p["list"][-1] == {"code": 0, "indent": 0, "parameters": []}


def sample_plugin_parameters():
    text = (SAMPLE / "js" / "plugins.js").read_text(encoding="utf-8")
    (ours,) = [e[2] for e in parse_plugins_js(text).entries if e[2]["name"] == PLUGIN_NAME]
    return ours["parameters"]


def test_npc_runs_generate_then_branches_on_the_success_switch():
    m = load("Map001")
    (npc,) = [e for e in m["events"][1:] if e["name"] == "Stranger"]
    listing = npc["pages"][0]["list"]
    codes = [(c["code"], c["parameters"]) for c in listing]
    i = codes.index((356, ["RmmvGan generate - - - event=this"]))
    switch = int(sample_plugin_parameters()["successSwitch"])
    assert switch > 0 and load("System")["switches"][switch], "the success switch is set and named"
    # Conditional Branch: switch ON -> the new face speaks; Else -> no placeholder face (the
    # previous character's face would show).
    assert codes[i + 1] == (111, [0, switch, 0])
    assert codes[i + 2][0] == 101 and codes[i + 2][1][0] == PLACEHOLDER_FACE
    other = codes.index((411, []))
    end = codes.index((412, []))
    assert i + 2 < other < end
    assert all(c["indent"] == 1 for c in listing[i + 2:other] + listing[other + 1:end])
    assert any(code == 101 for code, _ in codes[other + 1:end])
    assert not any(code == 101 and params[0] == PLACEHOLDER_FACE for code, params in codes[other + 1:end])
    (sign,) = [e for e in m["events"][1:] if e["name"] == "Sign"]
    assert (356, ["RmmvGan open"]) in [(c["code"], c["parameters"]) for c in sign["pages"][0]["list"]]


def test_plugins_js_enables_the_plugin():
    text = (SAMPLE / "js" / "plugins.js").read_text(encoding="utf-8")
    entries = [e[2] for e in parse_plugins_js(text).entries]
    node = shutil.which("node")
    if node:  # the browser's view: the file runs and defines $plugins
        out = subprocess.run([node, "-e", "const vm=require('vm'),c={};vm.createContext(c);"
                              "vm.runInContext(require('fs').readFileSync(process.argv[1],'utf8'),c);"
                              "process.stdout.write(JSON.stringify(c.$plugins))", str(SAMPLE / "js" / "plugins.js")],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == entries
    (ours,) = [e for e in entries if e["name"] == PLUGIN_NAME]
    assert ours["status"] is True
    header = read_header(plugin_source().decode())
    assert list(ours["parameters"]) == list(header.defaults)  # the header's parameters, no more, no less
    variables = load("System")["variables"]
    for key in ("characterVariable", "facesVariable"):
        assert variables[int(ours["parameters"][key])], f"{key} names an unnamed variable"
    assert (SAMPLE / "img" / "faces" / f"{PLACEHOLDER_FACE}.png").is_file()


def test_sample_is_an_mv_game_and_install_plugin_keeps_its_settings(tmp_path):
    assert GameFolder(SAMPLE).kind == "MV"
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE, copy)
    install_plugin(copy)
    assert (copy / "js" / "plugins.js").read_bytes() == (SAMPLE / "js" / "plugins.js").read_bytes()
    assert (copy / "js" / "plugins" / "RmmvGan.js").read_bytes() == plugin_source()


def test_index_html_links_the_game_font_and_both_setup_routes_keep_it():
    html = (SAMPLE / "index.html").read_text(encoding="utf-8")
    link = html.find('<link rel="stylesheet" type="text/css" href="fonts/gamefont.css">')
    assert 0 < link < html.find("</head>"), "MV's font stylesheet in the head, as a new MV project has it"
    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Make it run")[1].split("\n\n")[2]  # the two routes, a bullet each
    route1, route2 = [" ".join(b.split()) for b in section.split("\n- ")]
    copied = route1.split("Keep")[0]
    assert "data/" in copied and "index.html" not in copied, "route 1 must keep the new project's index.html"
    assert "`fonts/`" in route2, "route 2 must copy MV's fonts/ beside the index.html that links it"
