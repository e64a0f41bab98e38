"""How different a pack's characters are: per archetype, at the pack's defaults and with the
archetype strength at its extremes (issue 20).

    OMP_NUM_THREADS=1 python benchmarks/variety.py                 # the embedded pack
    OMP_NUM_THREADS=1 python benchmarks/variety.py --steps 20      # quicker projection

Variety of a set of characters: the mean, over all pairs, of the mean absolute RGB difference
(0-255) between two pictures after area-downsampling: the neutral face cell (faceIndex 0) at
18 x 18 (a bust cut out onto transparency is put back on white), the standing facing-down frame of the walk sheet at its native 16 x 16 (the game's
48-px frame divided by 3). Each archetype draws its own seeds (archetype k: seeds
start + 16k ...), so "between archetypes" compares different seeds of different archetypes and
"within" different seeds of one archetype. The whole pipeline (its face step included) runs at
the pack's defaults; at the strength extremes the sprites are made the pipeline's way
(mapping, archetype mix, synthesis) and the faces only from the vectors (below), since
without a face encoder each pipeline face costs a projection.

Reference rows: the procedural renderer (the seeds' vectors drawn), the sprite model with no
archetype, and the face model's own face of each seed's vector (z = [vector, neutral,
looking ahead]), at psi 0.6 (the article's) and at the default archetype's psi. The column "face from vector" does the same with the
archetype's face mix and the neutral emotion applied: the faces a perfect sprite-to-face step
would give, so it measures the archetype mix alone, whatever the pipeline's face step does.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmmv_gan import procedural  # noqa: E402
from rmmv_gan.latent import to_uint8, z_from_seeds  # noqa: E402
from rmmv_gan.packs import open_pack  # noqa: E402
from rmmv_gan.pipeline import CharacterRequest, apply_mix, make_characters, sprite_ws  # noqa: E402
from rmmv_gan.sheets import composite, idle_frame  # noqa: E402
from rmmv_gan.train import portrait_latent  # noqa: E402

DEFAULT_PACK = Path(__file__).resolve().parents[1] / "rmmv_gan" / "packs" / "default"
FACE_SIZE = (18, 18)
FRAME_SIZE = (16, 16)


def small(img: np.ndarray, size) -> np.ndarray:
    """RGB (RGBA: over white, as the face's background was), area-downsampled to size (w, h), as float."""
    rgb = composite(img, (255, 255, 255)) if img.shape[-1] == 4 else np.ascontiguousarray(img[..., :3])
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BOX), np.float32)


def variety(imgs, size) -> float:
    """Mean pairwise mean-absolute RGB difference (0-255) after area-downsampling."""
    d = [small(i, size) for i in imgs]
    return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(d, 2)]))


def between(groups, size) -> float:
    """The same over pairs whose two pictures lie in different groups."""
    d = [[small(i, size) for i in g] for g in groups]
    return float(np.mean([np.abs(a - b).mean() for g, h in itertools.combinations(d, 2) for a in g for b in h]))


@torch.no_grad()
def faces_from_vectors(opened, seeds, archetype=None, strength=0.0, psi=0.6):
    """Neutral faces of the seeds' own vectors in the face model, after the archetype's face mix."""
    G_f, pack = opened.face, opened.pack
    z = portrait_latent(np.stack([np.random.RandomState(s).randn(procedural.PORTRAIT_DIM) for s in seeds]))
    ws = G_f.mapping(torch.from_numpy(z), None, truncation_psi=psi)
    neutral = pack.emotions[0].face
    out = []
    for w in ws:
        if archetype is not None:
            w = apply_mix(w, opened, "face", pack.archetypes[archetype].face, strength)
        out.append(apply_mix(w, opened, "face", neutral))
    return list(to_uint8(G_f.synthesis(torch.stack(out), noise_mode="const"))[..., :3])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", type=Path, default=DEFAULT_PACK, help="pack folder (default: the embedded pack)")
    ap.add_argument("--seeds", type=int, default=16, help="characters per archetype")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--steps", type=int, default=None, help="projection steps (default: the pack's)")
    ap.add_argument("--no-pipeline-faces", action="store_true",
                    help="skip the pipeline's face step at the defaults too (fast without a face encoder)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    opened = open_pack(args.pack)
    pack = opened.pack
    names = list(pack.archetypes)
    seeds = {a: list(range(args.start + k * args.seeds, args.start + (k + 1) * args.seeds)) for k, a in enumerate(names)}
    all_seeds = [s for a in names for s in seeds[a]]

    print(f"pack {pack.name}, {args.seeds} seeds per archetype; variety = mean pairwise mean |RGB diff| (0-255)")
    print("| set | face variety | face from vector | sprite variety |")
    print("| --- | --- | --- | --- |")
    vs = [np.random.RandomState(s).randn(procedural.SPRITE_DIM) for s in all_seeds]
    print(f"| renderer (the seeds' vectors) | {variety([procedural.portrait_from_vector(v) for v in vs], FACE_SIZE):.1f} "
          f"| - | {variety([idle_frame(procedural.sprite_from_vector(v), pack.layout) for v in vs], FRAME_SIZE):.1f} |")
    for psi in sorted({0.6, pack.archetypes[pack.default_archetype].psi}):
        with torch.no_grad():
            z = z_from_seeds(all_seeds, opened.sprite.z_dim).float()
            own = to_uint8(opened.sprite(z, None, truncation_psi=psi, noise_mode="const"))[..., :3]
        print(f"| models at psi {psi:g}, no archetype | - | {variety(faces_from_vectors(opened, all_seeds, psi=psi), FACE_SIZE):.1f} "
              f"| {variety([idle_frame(i, pack.layout) for i in own], FRAME_SIZE):.1f} |")

    settings = [("defaults", None), ("strength 0", 0.0), ("strength 1", 1.0)]
    summary, done = {}, {}
    for label, strength in settings:
        groups_face, groups_vec, groups_sprite = [], [], []
        strengths = tuple(pack.archetypes[a].strength if strength is None else strength for a in names)
        if strengths in done:  # the same characters as an earlier setting (a default at an extreme)
            summary[label] = summary[done[strengths]]
            print(f"| all, {label} | as {done[strengths]} | | |")
            continue
        done[strengths] = label
        for a, st in zip(names, strengths):
            vec = faces_from_vectors(opened, seeds[a], a, st, psi=pack.archetypes[a].psi)
            if args.no_pipeline_faces or strength is not None:
                n = len(seeds[a])
                ws = sprite_ws(opened, seeds[a], [pack.archetypes[a].psi] * n, [a] * n, [st] * n)
                with torch.no_grad():
                    sprites = list(to_uint8(opened.sprite.synthesis(ws, noise_mode="const"))[..., :3])
                faces = None
            else:
                chars = make_characters(opened, [CharacterRequest(archetype=a, seed=s, strength=strength, steps=args.steps,
                                                                  emotions=[pack.emotions[0].name]) for s in seeds[a]])
                sprites = [c.sprite_native for c in chars]
                faces = [c.faces[0] for c in chars]
            frames = [idle_frame(i, pack.layout) for i in sprites]
            groups_vec.append(vec)
            groups_sprite.append(frames)
            groups_face.append(faces)
            fv = "-" if faces is None else f"{variety(faces, FACE_SIZE):.1f}"
            print(f"| {a}, {label} (strength {st:g}) | {fv} | {variety(vec, FACE_SIZE):.1f} | {variety(frames, FRAME_SIZE):.1f} |")
        summary[label] = (groups_face, groups_vec, groups_sprite)
    print()
    print("| setting | picture | within an archetype (mean) | between archetypes |")
    print("| --- | --- | --- | --- |")
    for label, _ in settings:
        groups_face, groups_vec, groups_sprite = summary[label]
        rows = [("face from vector", groups_vec, FACE_SIZE), ("sprite", groups_sprite, FRAME_SIZE)]
        if groups_face[0] is not None:
            rows.insert(0, ("face", groups_face, FACE_SIZE))
        for what, groups, size in rows:
            within = float(np.mean([variety(g, size) for g in groups]))
            print(f"| {label} | {what} | {within:.1f} | {between(groups, size):.1f} |")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
