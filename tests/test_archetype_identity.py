"""An archetype gives the type; the seed keeps its own person (issue 20).

Both default models take the procedural renderer's vector as z, so a seed's hair and skin
colours are known (procedural.decode_look), and so are the pixels the renderer paints with
them. The test seeds were picked for contrasting traits; each archetype is mixed into them,
and the hair and skin of the result must still be nearest to the seed's own colours.
Hair is measured where the renderer paints the seed's hair colour; skin where it paints the
seed's skin both in the seed's drawing and in its drawing as the type (procedural.archetypes),
since a cape covers the hands. (The renderer's hood covers nearly all the hair; the sprite
model draws no hood, and keeps the hair.)
"""

import numpy as np
import pytest
import torch

from rmmv_gan import procedural
from rmmv_gan.latent import to_uint8
from rmmv_gan.packs import DEFAULT_PACK, load_pack, open_pack
from rmmv_gan.pipeline import CharacterRequest, apply_mix, make_characters
from rmmv_gan.procedural.archetypes import ARCHETYPES as TRAITS, with_traits
from rmmv_gan.procedural.palette import decode_look
from rmmv_gan.train import portrait_latent

# Seeds whose vectors draw contrasting traits, and which the models themselves (no archetype)
# draw within 30 RGB levels of those traits.
HAIR_SEEDS = (65, 131)  # dark brown, silver-blonde hair
SKIN_SEEDS = (1, 65, 131)  # deep brown, pale, tan skin
SEEDS = sorted(set(HAIR_SEEDS + SKIN_SEEDS))
ARCHETYPES = list(load_pack(DEFAULT_PACK).archetypes)


def vector(seed):
    return np.random.RandomState(seed).randn(procedural.SPRITE_DIM)


def as_type(seed, archetype):
    """The seed's vector drawn as the archetype's type (only the type's components change)."""
    return with_traits(vector(seed), TRAITS[archetype])


def luma(rgb):
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


@pytest.fixture(scope="module")
def opened():
    return open_pack(DEFAULT_PACK)


def colour_where(img, drawings, colour):
    """Mean colour of img over the pixels the renderer painted exactly `colour` in all `drawings`."""
    mask = np.all([np.all(d == np.asarray(colour, np.uint8), axis=-1) for d in drawings], axis=0)
    assert mask.sum() >= 4, "the renderer drew too few pixels of this colour"
    return img[mask].astype(float).mean(0)


def nearest(colour, candidates: dict):
    return min(candidates, key=lambda k: np.linalg.norm(colour - np.asarray(candidates[k], float)))


def assert_keeps_hair_and_skin(pictures: dict, drawings: dict):
    """drawings: per seed, [the seed's drawing, its drawing as the type]."""
    hairs = {s: decode_look(vector(s)).hair for s in HAIR_SEEDS}
    skins = {s: decode_look(vector(s)).skin for s in SKIN_SEEDS}
    for s in HAIR_SEEDS:
        assert nearest(colour_where(pictures[s], drawings[s][:1], hairs[s]), hairs) == s, f"seed {s} lost its hair colour"
    for s in SKIN_SEEDS:
        assert nearest(colour_where(pictures[s], drawings[s], skins[s]), skins) == s, f"seed {s} lost its skin colour"


def test_the_test_seeds_have_contrasting_hair_and_skin():
    looks = {s: decode_look(vector(s)) for s in SEEDS}
    assert luma(looks[65].hair) < 60 and luma(looks[131].hair) > 190
    assert luma(looks[1].skin) < 80 < luma(looks[131].skin) - 40 < luma(looks[65].skin) - 100


@pytest.mark.parametrize("archetype", ARCHETYPES)
def test_an_archetype_keeps_each_walk_sheets_hair_and_skin(opened, archetype):
    chars = make_characters(opened, [CharacterRequest(archetype=archetype, seed=s, steps=1, emotions=["neutral"])
                                     for s in SEEDS])
    pictures = {s: c.sprite_native for s, c in zip(SEEDS, chars)}
    drawings = {s: [procedural.sprite_from_vector(v) for v in (vector(s), as_type(s, archetype))] for s in SEEDS}
    assert_keeps_hair_and_skin(pictures, drawings)


@pytest.mark.parametrize("archetype", ARCHETYPES)
def test_an_archetype_keeps_each_faces_hair_and_skin(opened, archetype):
    """The face model's own face of each seed's vector, through the archetype's face mix and
    the neutral emotion (what the pipeline does after its sprite-to-face step)."""
    pack, G = opened.pack, opened.face
    z = torch.from_numpy(portrait_latent(np.stack([vector(s)[: procedural.PORTRAIT_DIM] for s in SEEDS])))
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=pack.archetypes[archetype].psi)
        ws = [apply_mix(w, opened, "face", pack.archetypes[archetype].face, pack.archetypes[archetype].strength)
              for w in ws]
        ws = torch.stack([apply_mix(w, opened, "face", pack.emotions[0].face) for w in ws])
        faces = to_uint8(G.synthesis(ws, noise_mode="const"))[..., :3]
    pictures = dict(zip(SEEDS, faces))
    drawings = {s: [procedural.portrait_from_vector(v[: procedural.PORTRAIT_DIM]) for v in (vector(s), as_type(s, archetype))]
                for s in SEEDS}
    assert_keeps_hair_and_skin(pictures, drawings)
