"""Does a sprite model draw each character type when given the type's own vector? (issue 20)

An archetype's offset can only bring out what the sprite model draws at all: if the model,
given the renderer's exact vector of a hooded villain, draws no hood, no preset will. For
`count` random vectors and the same vectors drawn as each type of the default pack
(procedural.archetypes: only the type's components set), this prints the mean absolute RGB
difference (0-255) between the model's walk sheet (psi 1, constant noise) and the
renderer's, over the whole native 48 x 64 sheet.

    python benchmarks/type_fidelity.py [--pack DIR | --network FILE] [--count 64] [--grid out.png]

--grid writes, per type, 8 characters' renderer sheets above the model's (3x).

With a pack (not --network), a second table: the pipeline's own sprites at the pack's
defaults (each archetype's psi and sprite mix, strength 0; archetype k on seeds
16k .. 16k + 15, as benchmarks/variety.py) against the renderer's drawing of each seed's
vector as that type. The archetype mix alone (`offset`) is printed beside the pack's mix, so
a pack whose archetypes set latent traits (docs/packs.md) shows what they bring.

And a third: the pipeline's neutral faces (as export writes them, over white) of the same
32 seeds (200-231) as each archetype, against the renderer's portrait of each seed's vector
as that type, both area-downsampled to 18 x 18 (as benchmarks/face_identity.py) and 36 x 36.
It shows whether a face mix (pack.json `archetypes.NAME.face`) brings the type onto the
face, or a second type onto the one the encoder already reads from the sprite.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from rmmv_gan import procedural
from rmmv_gan.latent import to_uint8
from rmmv_gan.models import load_generator
from rmmv_gan.packs import DEFAULT_PACK, load_pack
from rmmv_gan.procedural.archetypes import ARCHETYPES, with_traits


def sets_of_vectors(count: int, seed: int) -> dict:
    base = np.random.RandomState(seed).randn(count, procedural.SPRITE_DIM).astype(np.float32)
    return {"random": base} | {name: with_traits(base, traits) for name, traits in ARCHETYPES.items()}


@torch.no_grad()
def model_sheets(G, v: np.ndarray) -> np.ndarray:
    return to_uint8(G(torch.from_numpy(v), None, truncation_psi=1.0, noise_mode="const"))[..., :3]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", default=None, help="pack folder (default: the embedded pack)")
    ap.add_argument("--network", default=None, help="a sprite model file instead of a pack's")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--grid", default=None, help="write renderer | model rows per type to this PNG")
    args = ap.parse_args()
    path = args.network or load_pack(args.pack or DEFAULT_PACK).model_path("sprite")
    G = load_generator(path)
    print(f"sprite model {path}; {args.count} vectors (seed {args.seed}); mean |RGB diff| model vs renderer")
    print("| vectors | error |\n| --- | --- |")
    rows = []
    for name, v in sets_of_vectors(args.count, args.seed).items():
        drawn = model_sheets(G, v)
        truth = np.stack([procedural.sprite_from_vector(x) for x in v])
        print(f"| {name} | {np.abs(drawn.astype(float) - truth).mean():.2f} |")
        if name != "random":
            rows += [np.concatenate(list(truth[:8]), 1), np.concatenate(list(drawn[:8]), 1)]
    if args.grid:
        from PIL import Image

        img = np.concatenate(rows, 0)
        Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST).save(args.grid)
        print(f"wrote {args.grid}")
    if args.network is None:
        pipeline_table(args.pack)
        face_table(args.pack)


def pipeline_table(pack_dir, per_type: int = 16):
    """The pipeline's sprites of each archetype against the renderer's drawing of the seeds as the type."""
    import dataclasses

    from rmmv_gan.latent import z_from_seeds
    from rmmv_gan.packs import open_pack
    from rmmv_gan.pipeline import sprite_ws

    opened = open_pack(pack_dir)
    print(f"\npipeline sprites at the pack's defaults, {per_type} seeds per archetype; mean |RGB diff| "
          "to the renderer's drawing of each seed as its type")
    print("| archetype | pack's mix | offset alone |\n| --- | --- | --- |")
    for k, (name, arch) in enumerate(opened.pack.archetypes.items()):
        if name not in ARCHETYPES:
            continue
        seeds = list(range(k * per_type, (k + 1) * per_type))
        truth = np.stack([procedural.sprite_from_vector(v)
                          for v in with_traits(z_from_seeds(seeds, procedural.SPRITE_DIM).numpy(), ARCHETYPES[name])])
        errors = []
        for traits in (arch.sprite.traits, {}):
            sprite = dataclasses.replace(arch.sprite, traits=traits)
            opened.pack.archetypes[name] = dataclasses.replace(arch, sprite=sprite)
            ws = sprite_ws(opened, seeds, [arch.psi] * per_type, [name] * per_type, [arch.strength] * per_type)
            with torch.no_grad():
                drawn = to_uint8(opened.sprite.synthesis(ws, noise_mode="const"))[..., :3]
            errors.append(np.abs(drawn.astype(float) - truth).mean())
        opened.pack.archetypes[name] = arch
        print(f"| {name} | {errors[0]:.1f} | {errors[1]:.1f} |")


def face_table(pack_dir, seeds=range(200, 232)):
    """The pipeline's neutral faces of each archetype against the renderer's portraits of the seeds as the type."""
    from rmmv_gan.latent import z_from_seeds
    from rmmv_gan.packs import open_pack
    from rmmv_gan.pipeline import CharacterRequest, make_characters
    from rmmv_gan.sheets import composite, resize

    opened = open_pack(pack_dir)
    seeds = list(seeds)
    neutral = opened.pack.emotions[0].name
    print(f"\npipeline faces (neutral) at the pack's defaults, seeds {seeds[0]}-{seeds[-1]} for every archetype; "
          "mean |RGB diff| to the renderer's portrait of each seed as its type")
    print("| archetype | face mix | 18 x 18 | 36 x 36 |\n| --- | --- | --- | --- |")
    for name, arch in opened.pack.archetypes.items():
        if name not in ARCHETYPES:
            continue
        typed = with_traits(z_from_seeds(seeds, procedural.SPRITE_DIM).numpy(), ARCHETYPES[name])
        truth = [procedural.portrait_from_vector(v, "neutral", 0.0) for v in typed]
        chars = make_characters(opened, [CharacterRequest(archetype=name, seed=s, emotions=[neutral]) for s in seeds])
        faces = [composite(c.faces[0], (255, 255, 255)) for c in chars]  # over the portraits' white
        errors = [np.mean([np.abs(resize(f, n, n).astype(np.float32) - resize(t, n, n)).mean()
                           for f, t in zip(faces, truth)]) for n in (18, 36)]
        mix = arch.face.preset or "none"
        print(f"| {name} | {mix} | {errors[0]:.1f} | {errors[1]:.1f} |")


if __name__ == "__main__":
    main()
