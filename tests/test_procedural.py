"""Procedural training data: deterministic renderers that draw valid RPG Maker sheets and
portraits whose expressions keep the person and whose turn moves the face."""

import cv2
import numpy as np
import pytest

from rmmv_gan.procedural import (EXPRESSIONS, PORTRAIT_DIM, SPRITE_DIM, decode_look, portrait,
                                 portrait_from_vector, sample_batch, sprite_from_vector,
                                 sprite_sheet)
from rmmv_gan.procedural.portraits import _DARK

WHITE = np.array([255, 255, 255], np.uint8)
SEEDS = range(24)   # enough to hit every hair style, outfit and accessory at least once


def frames(sheet):
    """[row][col] -> 16 x 16 x 3 frame."""
    return sheet.reshape(4, 16, 3, 16, 3).transpose(0, 2, 1, 3, 4)


def is_white(img):
    return np.all(img == WHITE, axis=-1)


@pytest.fixture(scope="module")
def sheets():
    return {s: sprite_sheet(s) for s in SEEDS}


def test_sprite_sheet_is_deterministic_and_matches_its_vector():
    v = np.random.RandomState(5).randn(SPRITE_DIM)
    assert np.array_equal(sprite_sheet(5), sprite_sheet(5))
    assert np.array_equal(sprite_sheet(5), sprite_from_vector(v))


def test_sprite_sheet_shape_and_dtype(sheets):
    for sheet in sheets.values():
        assert sheet.shape == (64, 48, 3) and sheet.dtype == np.uint8


def test_every_frame_has_a_figure_clear_of_the_frame_edges(sheets):
    for seed, sheet in sheets.items():
        f = frames(sheet)
        for r in range(4):
            for c in range(3):
                white = is_white(f[r, c])
                assert (~white).sum() >= 60, (seed, r, c)
                # Top row, both side columns and the bottom margin stay background.
                assert white[0].all() and white[15].all(), (seed, r, c)
                assert white[:, 0].all() and white[:, 15].all(), (seed, r, c)


def test_no_pure_white_inside_the_figure(sheets):
    # Every white pixel is reachable from the frame border: background, not a highlight.
    for seed, sheet in sheets.items():
        f = frames(sheet)
        for r in range(4):
            for c in range(3):
                white = is_white(f[r, c]).astype(np.uint8)
                n, labels = cv2.connectedComponents(white, connectivity=4)
                assert n == 2, (seed, r, c)   # label 0 = figure, label 1 = the one background


def test_figure_has_a_dark_outline(sheets):
    # Each figure pixel next to the background is dark (the 1-px RPG Maker outline).
    for sheet in sheets.values():
        f = frames(sheet)[0, 1]
        fig = ~is_white(f)
        bg = ~fig
        touch = np.zeros_like(fig)
        touch[1:] |= bg[:-1]
        touch[:-1] |= bg[1:]
        touch[:, 1:] |= bg[:, :-1]
        touch[:, :-1] |= bg[:, 1:]
        edge = fig & touch
        assert f[edge].max() < 80


def test_up_view_differs_from_down_view(sheets):
    for sheet in sheets.values():
        f = frames(sheet)
        assert not np.array_equal(f[0, 1], f[3, 1])


def test_walk_patterns_differ_from_the_standing_pattern(sheets):
    for sheet in sheets.values():
        f = frames(sheet)
        for r in range(4):
            assert not np.array_equal(f[r, 0], f[r, 1])
            assert not np.array_equal(f[r, 2], f[r, 1])


def test_down_and_up_walk_patterns_are_mirror_images(sheets):
    for sheet in sheets.values():
        f = frames(sheet)
        for r in (0, 3):
            assert np.array_equal(f[r, 0], f[r, 2][:, ::-1])


def test_right_row_mirrors_left_row(sheets):
    for sheet in sheets.values():
        f = frames(sheet)
        for c in range(3):
            assert np.array_equal(f[2, c], f[1, c][:, ::-1])


def test_different_seeds_give_different_sheets(sheets):
    flat = {sheet.tobytes() for sheet in sheets.values()}
    assert len(flat) == len(sheets)


def test_a_continuous_component_changes_colours_smoothly():
    v = np.random.RandomState(3).randn(SPRITE_DIM)
    w = v.copy()
    w[0] += 1e-3   # skin tone
    a, b = sprite_from_vector(v).astype(int), sprite_from_vector(w).astype(int)
    assert np.array_equal(is_white(a), is_white(b))
    assert np.abs(a - b).max() <= 2


def banded_and_bare(seed, dim):
    """A random vector drawn with the heroine's headband, and without any headwear."""
    from rmmv_gan.procedural.archetypes import ARCHETYPES, with_traits

    v = np.random.RandomState(seed).randn(dim)
    bare = v.copy()
    bare[17] = -3.0                                   # headwear: none
    return with_traits(v, {17: ARCHETYPES["heroine"][17]}), bare


def test_a_headband_is_tied_in_a_bow_that_widens_the_head():
    # The heroine's mark must read at 16 px: seen from the front or the back, the bow's loops
    # stand out on both sides of the head's top row (6 px wide bare or with hair); in every
    # view the bow and band are drawn in the accessory colour.
    for seed in range(4):
        banded, bare = banded_and_bare(seed, SPRITE_DIM)
        assert decode_look(banded).headwear == "band" and decode_look(bare).headwear == "none"
        accent = np.array(decode_look(banded).accent, np.uint8)
        banded_frames, bare_frames = frames(sprite_from_vector(banded)), frames(sprite_from_vector(bare))
        for row in (0, 3):
            top_banded = ~is_white(banded_frames[row, 1][2])
            top_bare = ~is_white(bare_frames[row, 1][2])
            assert top_banded.sum() >= top_bare.sum() + 2, (seed, row)
        for row in range(4):
            head = banded_frames[row, 1][2:5]
            assert np.all(head == accent, axis=-1).sum() >= 12, (seed, row)


def test_a_portraits_headband_is_tied_in_the_same_bow_above_the_hair():
    # The face must wear its sprite's mark: above the band (its top edge is row 14) the bow's
    # loops put dozens of accessory-coloured pixels into the hair, which a bare head lacks.
    for seed in range(4):
        banded, bare = banded_and_bare(seed, PORTRAIT_DIM)
        accent = np.array(decode_look(banded).accent, np.uint8)
        above = lambda p: np.all(p[:14] == accent, axis=-1).sum()  # noqa: E731
        for turn in (0.0, 0.8):
            assert above(portrait_from_vector(banded, "neutral", turn)) >= \
                above(portrait_from_vector(bare, "neutral", turn)) + 40, (seed, turn)


def test_wrong_vector_length_is_refused():
    with pytest.raises(ValueError):
        sprite_from_vector(np.zeros(SPRITE_DIM + 1))
    with pytest.raises(ValueError):
        portrait_from_vector(np.zeros(PORTRAIT_DIM - 1))


# --------------------------------------------------------------------------- portraits
def hairy_vector():
    """A portrait vector with visible hair and nothing on the head."""
    for seed in range(100):
        v = np.random.RandomState(seed).randn(PORTRAIT_DIM)
        look = decode_look(v)
        if look.headwear == "none" and look.hair_style != "bald":
            return v, look
    raise AssertionError("no hairy vector in 100 seeds")


def test_portrait_is_deterministic_shaped_and_on_white():
    img = portrait(11, "happy", 0.3)
    assert img.shape == (72, 72, 3) and img.dtype == np.uint8
    assert np.array_equal(img, portrait(11, "happy", 0.3))
    v = np.random.RandomState(11).randn(PORTRAIT_DIM)
    assert np.array_equal(img, portrait_from_vector(v, "happy", 0.3))
    assert is_white(img[0, :8]).all() and is_white(img[:8, 0]).all()


def test_expressions_differ_but_keep_the_hair():
    v, look = hairy_vector()
    imgs = [portrait_from_vector(v, e) for e in EXPRESSIONS]
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            assert not np.array_equal(imgs[i], imgs[j]), (EXPRESSIONS[i], EXPRESSIONS[j])
    # The top of the head (hair) is pixel-identical across expressions and holds the hair
    # colour itself.
    for img in imgs[1:]:
        assert np.array_equal(img[:18], imgs[0][:18])
    assert np.all(imgs[0][:18] == np.array(look.hair, np.uint8), axis=-1).sum() > 40


def test_unknown_expression_is_refused():
    with pytest.raises(ValueError):
        portrait(0, "smug")


def test_turn_moves_the_eyes_toward_the_turn():
    v, _ = hairy_vector()

    def eyes_x(turn):
        img = portrait_from_vector(v, "neutral", turn)
        ys, xs = np.nonzero(np.all(img == np.array(_DARK, np.uint8), axis=-1))
        assert xs.size > 10
        return xs.mean()

    left, front, right = eyes_x(-1.0), eyes_x(0.0), eyes_x(1.0)
    assert left < front - 2 and right > front + 2


def test_sprite_and_portrait_of_one_vector_share_the_skin():
    v = np.random.RandomState(2).randn(SPRITE_DIM)
    skin = np.array(decode_look(v).skin, np.uint8)
    chin = frames(sprite_from_vector(v))[0, 1][7, 7]
    assert np.array_equal(chin, skin)
    assert np.array_equal(portrait_from_vector(v)[42, 36], skin)


def test_sample_batch_renders_its_own_vectors():
    rng = np.random.default_rng(0)
    vs, imgs = sample_batch("sprite", 3, rng)
    assert vs.shape == (3, SPRITE_DIM) and vs.dtype == np.float32
    assert imgs.shape == (3, 64, 48, 3) and imgs.dtype == np.uint8
    assert np.array_equal(imgs[1], sprite_from_vector(vs[1]))
    vs, imgs, params = sample_batch("portrait", 4, np.random.RandomState(1), return_params=True)
    assert vs.shape == (4, PORTRAIT_DIM) and imgs.shape == (4, 72, 72, 3)
    assert np.all((params[:, 1] >= -1) & (params[:, 1] <= 1))
    for i in range(4):
        assert np.array_equal(imgs[i], portrait_from_vector(vs[i], EXPRESSIONS[int(params[i, 0])],
                                                            float(params[i, 1])))
    with pytest.raises(ValueError):
        sample_batch("monster", 1, rng)
