"""The palette step (rmmv_gan.pixel_art): its rules on small synthetic frames, and its
fidelity on the procedural renderer's sheets, whose true pixels are known."""

import numpy as np
import pytest

from rmmv_gan import procedural
from rmmv_gan.pixel_art import JND, oklab, pixel_art_frames, pixel_art_sheet, sheet_figures
from rmmv_gan.sheets import SheetLayout, native_to_frames

OUTLINE, CLOTH, SKIN = (30, 20, 40), (200, 60, 60), (240, 200, 170)
GREEN = (40, 200, 60)
N = 16


def figure_frames(outline=True):
    """12 identical 16 x 16 frames: a head of skin over a body of cloth, with (or without) a
    dark 1-px outline around it, on transparency."""
    frame = np.zeros((N, N, 4), np.uint8)
    frame[3:7, 5:11] = SKIN + (255,)
    frame[7:13, 4:12] = CLOTH + (255,)
    if outline:
        body = frame[..., 3] > 0
        ring = np.zeros_like(body)
        ring[1:] |= body[:-1]
        ring[:-1] |= body[1:]
        ring[:, 1:] |= body[:, :-1]
        ring[:, :-1] |= body[:, 1:]
        frame[ring & ~body] = OUTLINE + (255,)
    return np.tile(frame, (4, 3, 1, 1, 1))


def edge(alpha):
    """Opaque pixels with a transparent 4-neighbour or on the frame's border (the synthetic
    figures have no holes)."""
    free = np.pad(~alpha, 1, constant_values=True)
    touch = free[:-2, 1:-1] | free[2:, 1:-1] | free[1:-1, :-2] | free[1:-1, 2:]
    return alpha & touch


def as_sheet(frames):
    """Frames [direction][pattern] back into one native sheet."""
    return np.concatenate([np.concatenate(list(row), axis=1) for row in frames], axis=0)


def colour(frames, d, p, y, x):
    return tuple(int(v) for v in frames[d, p, y, x, :3])


def test_an_isolated_pixel_takes_its_neighbours_colour():
    frames = figure_frames()
    frames[0, 0, 9, 7, :3] = GREEN
    out = pixel_art_frames(frames)
    assert colour(out, 0, 0, 9, 7) == CLOTH


def test_a_pixel_drawn_the_same_in_every_pattern_is_a_detail_and_stays():
    frames = figure_frames()
    frames[0, :, 9, 7, :3] = GREEN  # like an eye or a buckle: in all three patterns of the row
    out = pixel_art_frames(frames)
    assert all(colour(out, 0, p, 9, 7) == GREEN for p in range(3))


def test_a_gap_in_the_outline_is_closed_in_the_outline_colour():
    frames = figure_frames()
    frames[:, :, 9, 3, :3] = CLOTH  # the model forgot one outline pixel on the left side
    out = pixel_art_frames(frames)
    alpha = out[..., 3] > 0
    for d in range(4):
        for p in range(3):
            ring = out[d, p][edge(alpha[d, p])][:, :3]
            assert (ring == OUTLINE).all()


def test_a_figure_without_an_outline_gets_none():
    frames = figure_frames(outline=False)
    out = pixel_art_frames(frames)
    assert np.array_equal(out, frames)


def test_half_background_pixels_outside_the_outline_go():
    frames = figure_frames()
    frames[:, :, 1, 7] = (160, 150, 165, 255)  # half way from the outline to white, above it
    frames[:, :, 9, 2] = (250, 240, 200, 255)  # a light pixel stuck to the outside of the line
    out = pixel_art_frames(frames, background=(255, 255, 255))
    assert (out[:, :, 1, 7, 3] == 0).all() and (out[:, :, 9, 2, 3] == 0).all()
    assert (out[:, :, 2, 7, :3] == OUTLINE).all()  # the line under them stays


def test_nothing_detached_from_the_figure_stays():
    frames = figure_frames()
    frames[:, :, 0:2, 0:2] = CLOTH + (255,)  # a crumb in the corner, a pixel away
    out = pixel_art_frames(frames)
    assert (out[:, :, 0:2, 0:2, 3] == 0).all()
    assert np.array_equal(out[:, :, 2:], frames[:, :, 2:])


def test_alpha_is_hard_and_transparent_pixels_are_black():
    frames = figure_frames()
    frames[..., :3][frames[..., 3] == 0] = (255, 255, 255)
    out = pixel_art_frames(frames)
    assert set(np.unique(out[..., 3])) == {0, 255}
    assert (out[out[..., 3] == 0][:, :3] == 0).all()


@pytest.mark.parametrize("low,high", [(4, 8), (12, 24)])
def test_a_noisy_sheet_gets_a_palette_within_the_range(low, high):
    frames = figure_frames()
    rng = np.random.default_rng(0)
    opaque = frames[..., 3] > 0
    noisy = frames[..., :3].astype(int) + rng.integers(-40, 41, frames.shape[:-1] + (3,))
    frames[..., :3] = np.where(opaque[..., None], np.clip(noisy, 0, 255), 0).astype(np.uint8)
    out = pixel_art_frames(frames, (low, high))
    colours = np.unique(out[out[..., 3] > 0][:, :3], axis=0)
    assert low <= len(colours) <= high


def test_an_empty_sheet_stays_empty():
    frames = np.zeros((4, 3, N, N, 4), np.uint8)
    assert not pixel_art_frames(frames).any()


@pytest.mark.parametrize("colours", [(24, 12), (1, 8), (12, 300)])
def test_a_bad_colour_range_is_refused(colours):
    with pytest.raises(ValueError, match="palette range"):
        pixel_art_frames(figure_frames(), colours)


def test_pixels_outside_the_layouts_frames_are_left_alone():
    layout = SheetLayout(N, N, offset_x=2)
    sheet = np.zeros((4 * N, 3 * N + 2, 4), np.uint8)
    sheet[:, :2] = GREEN + (255,)
    sheet[:, 2:] = as_sheet(figure_frames())
    out = pixel_art_sheet(sheet, layout)
    assert np.array_equal(out[:, :2], sheet[:, :2])
    assert np.array_equal(native_to_frames(out, layout), pixel_art_frames(figure_frames()))


# --------------------------------------------------------------------------- figures

def test_sheet_figures_count_colours_rare_pixels_and_drift():
    frames = figure_frames()
    frames[1, 0, 9, 7, :3] = GREEN  # one pixel of a colour the standing frame lacks
    sheet = as_sheet(frames)
    f = sheet_figures(sheet)
    opaque = int((sheet[..., 3] > 0).sum())
    step_pixels = int((frames[:, [0, 2], ..., 3] > 0).sum())
    assert f["colours"] == 4
    assert f["rare"] == pytest.approx(100 / opaque)
    assert f["drift"] == pytest.approx(100 / step_pixels)


# --------------------------------------------------------------------------- renderer sheets

RENDERER_SEEDS = range(32)
EYE = (34, 26, 44)  # procedural.sprites: the 'e' role, with the iris ('i') one pixel below
RENDERER_OUTLINE = (38, 28, 40)


def renderer_frames(seed):
    rgb = procedural.sprite_sheet(seed)
    alpha = np.where((rgb != 255).any(axis=2), 255, 0).astype(np.uint8)
    return native_to_frames(np.dstack([rgb, alpha]), SheetLayout(procedural.FRAME, procedural.FRAME))


def colour_classes(frames):
    """Per opaque pixel of the renderer's frames, its colour class: colours closer than one
    just-noticeable difference are one class (the outline and the eye's dark pixel are)."""
    alpha = frames[..., 3] > 0
    colours = np.unique(frames[alpha][:, :3], axis=0)
    lab = oklab(colours)
    cls = np.arange(len(colours))
    near = np.linalg.norm(lab[:, None] - lab[None], axis=-1) < JND
    for i in range(len(colours)):  # transitive closure, small sets
        cls[np.isin(cls, cls[near[i]])] = cls[i]

    def classify(rgb):
        return cls[np.argmin(np.linalg.norm(oklab(rgb)[:, None] - lab[None], axis=-1), axis=1)]

    return classify


def kept(frames, out):
    """Per pixel opaque in the renderer's frames: still opaque and in the same colour class."""
    alpha = frames[..., 3] > 0
    classify = colour_classes(frames)
    same = np.zeros(alpha.shape, bool)
    same[alpha] = classify(out[alpha][:, :3]) == classify(frames[alpha][:, :3])
    return same & (out[..., 3] > 0)


@pytest.mark.parametrize("seed", RENDERER_SEEDS)
def test_renderer_sheets_keep_at_least_97_percent_of_their_colour_classes(seed):
    frames = renderer_frames(seed)
    share = kept(frames, pixel_art_frames(frames))[frames[..., 3] > 0].mean()
    assert share >= 0.97, f"seed {seed}: {share:.3f}"


@pytest.mark.parametrize("seed", RENDERER_SEEDS)
def test_renderer_sheets_lose_no_eye_and_no_outline_pixel(seed):
    frames = renderer_frames(seed)
    ok = kept(frames, pixel_art_frames(frames))
    eye = (frames[..., :3] == EYE).all(-1)
    iris = np.zeros_like(eye)
    iris[..., 1:, :] = eye[..., :-1, :]
    line = (frames[..., :3] == RENDERER_OUTLINE).all(-1)
    assert line.any()  # (a fringe or a hat may hide the eyes)
    assert ok[eye].all() and ok[iris].all() and ok[line].all()
