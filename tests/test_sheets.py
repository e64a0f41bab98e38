"""Sheet layouts and RPG Maker sheets, checked pixel by pixel on frames of known content."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from rmmv_gan.sheets import (
    SheetLayout, character_sheet, contact_sheet, eight_character_sheet, face_sheet,
    head_crop, idle_frame, native_to_character_sheet, native_to_frames, resize,
    slice_character_sheet, slice_eight_sheet, slice_face_sheet, walk_apng, walk_frames,
    walk_gif,
)

MV = ("down", "left", "right", "up")


def tag(direction: int, pattern: int, size: int = 16, character: int = 0) -> np.ndarray:
    """An RGBA frame whose colour says which character, direction and pattern it is, with a
    marker pixel at the top left so a flipped or shifted frame would show."""
    f = np.zeros((size, size, 4), np.uint8)
    f[...] = (10 + 60 * direction, 10 + 80 * pattern, 10 + 30 * character, 255)
    f[0, 0] = (255, 255, 255, 255)
    f[-1, -1, 3] = 0
    return f


def random_rgba(rng, h, w):
    a = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    a[..., 3] = np.where(a[..., 3] > 127, 255, 0)
    return a


# --------------------------------------------------------------------------- layout

def test_layout_round_trips_through_a_dict():
    layout = SheetLayout(16, 24, columns=4, direction_order=("up", "down", "left", "right"),
                         pattern_order=(0, 1, 2, 1), offset_x=2, offset_y=3, gap_x=1, gap_y=2)
    assert SheetLayout.from_dict(layout.to_dict()) == layout


def test_layout_from_json_lists_is_equal_to_the_tuple_one():
    d = {"frame_w": 16, "frame_h": 16, "direction_order": ["down", "left", "right", "up"],
         "pattern_order": [0, 1, 2]}
    assert SheetLayout.from_dict(d) == SheetLayout(16, 16)


def test_layout_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown sheet layout keys"):
        SheetLayout.from_dict({"frame_w": 16, "frame_h": 16, "colums": 3})


@pytest.mark.parametrize("kwargs, message", [
    ({"direction_order": ("down", "left", "right", "north")}, "lacks"),
    ({"direction_order": ("down", "left", "right")}, "4 distinct"),
    ({"pattern_order": (0, 1, 1)}, "0, 1 and 2"),
    ({"columns": 4}, "4 entries"),
    ({"gap_x": -1}, "negative"),
])
def test_layout_refuses_inconsistent_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SheetLayout(16, 16, **kwargs)


def test_layout_box_accounts_for_offset_and_gaps():
    layout = SheetLayout(16, 20, offset_x=2, offset_y=3, gap_x=1, gap_y=4)
    assert layout.box(2, 1) == (2 + 17, 3 + 2 * 24, 16, 20)
    assert layout.size == (2 + 3 * 16 + 2, 3 + 4 * 20 + 3 * 4)


# --------------------------------------------------------------------------- MV order

def native_sheet(layout: SheetLayout, size: int = 16) -> np.ndarray:
    """A native sheet drawn in the layout's order, each frame tagged with its MV meaning."""
    w, h = layout.size
    img = np.zeros((h + 5, w + 7, 4), np.uint8)  # spare margin right and bottom
    for r, direction in enumerate(layout.direction_order):
        for c, pattern in enumerate(layout.pattern_order):
            x, y, fw, fh = layout.box(r, c)
            img[y:y + fh, x:x + fw] = tag(MV.index(direction), pattern, size)
    return img


def test_native_frames_come_out_in_mv_order():
    layout = SheetLayout(16, 16, direction_order=("up", "right", "down", "left"),
                         pattern_order=(2, 0, 1), offset_x=3, offset_y=1, gap_x=2, gap_y=1)
    frames = native_to_frames(native_sheet(layout), layout)
    assert frames.shape == (4, 3, 16, 16, 4)
    for d in range(4):
        for p in range(3):
            assert np.array_equal(frames[d, p], tag(d, p))


def test_a_four_column_cycle_uses_the_first_column_of_each_pattern():
    layout = SheetLayout(16, 16, columns=4, pattern_order=(1, 0, 1, 2))
    img = native_sheet(layout)
    img[:, 32:48] = 0  # the second "1" column must not be read
    frames = native_to_frames(img, layout)
    assert all(np.array_equal(frames[d, 1], tag(d, 1)) for d in range(4))


def test_native_sheet_smaller_than_layout_is_refused():
    with pytest.raises(ValueError, match="needs at least 48 x 64"):
        native_to_frames(np.zeros((60, 48, 3), np.uint8), SheetLayout(16, 16))


def test_character_sheet_puts_each_frame_in_its_cell():
    frames = np.stack([np.stack([tag(d, p, 48) for p in range(3)]) for d in range(4)])
    sheet = character_sheet(frames)
    assert sheet.shape == (192, 144, 4)
    for d in range(4):
        for p in range(3):
            assert np.array_equal(sheet[d * 48:(d + 1) * 48, p * 48:(p + 1) * 48], tag(d, p, 48))


def test_whole_scale_factor_repeats_pixels():
    layout = SheetLayout(16, 16)
    sheet = native_to_character_sheet(native_sheet(layout), layout)
    cell = sheet[48:96, 96:144]  # left, pattern 2
    assert np.array_equal(cell, np.repeat(np.repeat(tag(1, 2), 3, 0), 3, 1))


def test_fractional_scale_uses_area_and_keeps_alpha_hard():
    rng = np.random.default_rng(1)
    frame = random_rgba(rng, 32, 32)
    frame[..., 3] = 255
    out = resize(frame, 48, 48)
    expected = cv2.resize(frame, (48, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    holes = random_rgba(rng, 64, 64)
    assert set(np.unique(resize(holes, 48, 48)[..., 3])) <= {0, 255}


def test_area_scaling_does_not_tint_edges_with_transparent_colour():
    frame = np.zeros((64, 64, 4), np.uint8)
    frame[:, :] = (255, 0, 0, 0)  # invisible red
    frame[:, 32:] = (0, 0, 255, 255)
    out = resize(frame, 48, 48)
    opaque = out[out[..., 3] == 255]
    assert len(opaque) and (opaque[:, 0] == 0).all()


def test_rgb_frames_become_opaque_rgba():
    frames = np.zeros((4, 3, 48, 48, 3), np.uint8)
    sheet = character_sheet(frames)
    assert sheet.shape == (192, 144, 4) and (sheet[..., 3] == 255).all()


def test_eight_sheet_places_character_i_at_column_i_mod_4_row_i_div_4():
    chars = [character_sheet(np.stack([np.stack([tag(d, p, 48, i) for p in range(3)])
                                       for d in range(4)])) for i in range(8)]
    sheet = eight_character_sheet(chars)
    assert sheet.shape == (384, 576, 4)
    for i in range(8):
        x, y = (i % 4) * 144, (i // 4) * 192
        assert np.array_equal(sheet[y:y + 192, x:x + 144], chars[i])


def test_eight_sheet_leaves_missing_characters_transparent():
    one = np.full((192, 144, 4), 200, np.uint8)
    sheet = eight_character_sheet([None, one])
    assert np.array_equal(sheet[:192, 144:288], one)
    assert sheet[:192, :144, 3].max() == 0 and sheet[:, 288:, 3].max() == 0
    assert sheet[192:, :, 3].max() == 0


def test_eight_sheet_refuses_a_ninth_character():
    with pytest.raises(ValueError, match="at most 8"):
        eight_character_sheet([np.zeros((192, 144, 4), np.uint8)] * 9)


def test_face_sheet_follows_face_index():
    faces = [np.full((144, 144, 3), 20 * i + 5, np.uint8) for i in range(8)]
    sheet = face_sheet(faces)
    assert sheet.shape == (288, 576, 4)
    for i in range(8):
        x, y = (i % 4) * 144, (i // 4) * 144
        cell = sheet[y:y + 144, x:x + 144]
        assert (cell[..., :3] == 20 * i + 5).all() and (cell[..., 3] == 255).all()


def test_face_sheet_scales_faces_and_leaves_empty_slots_transparent():
    face = np.zeros((72, 72, 3), np.uint8)
    face[0, 0] = 255
    sheet = face_sheet([None, None, face])
    cell = sheet[:144, 288:432]
    assert (cell[:2, :2, :3] == 255).all() and (cell[2:, 2:, :3] == 0).all()
    assert sheet[:, :288, 3].max() == 0 and sheet[144:, :, 3].max() == 0


# --------------------------------------------------------------------------- slicing

def test_slicing_and_rebuilding_a_character_sheet_gives_the_same_pixels():
    sheet = random_rgba(np.random.default_rng(2), 192, 144)
    frames = slice_character_sheet(sheet)
    assert frames.shape == (4, 3, 48, 48, 4)
    assert character_sheet(frames).tobytes() == sheet.tobytes()


def test_slicing_and_rebuilding_an_eight_sheet_gives_the_same_pixels():
    sheet = random_rgba(np.random.default_rng(3), 384, 576)
    chars = slice_eight_sheet(sheet)
    assert len(chars) == 8 and chars[5].shape == (192, 144, 4)
    rebuilt = eight_character_sheet([character_sheet(slice_character_sheet(c)) for c in chars])
    assert rebuilt.tobytes() == sheet.tobytes()


def test_slicing_and_rebuilding_a_face_sheet_gives_the_same_pixels():
    sheet = random_rgba(np.random.default_rng(4), 288, 576)
    assert face_sheet(slice_face_sheet(sheet)).tobytes() == sheet.tobytes()


def test_slicing_an_mv_sheet_finds_character_5_in_the_second_row():
    sheet = np.zeros((384, 576, 4), np.uint8)
    sheet[192:, 144:288] = 77
    assert (slice_eight_sheet(sheet)[5] == 77).all()


def test_a_sheet_that_does_not_divide_is_refused():
    with pytest.raises(ValueError, match="3 x 4"):
        slice_character_sheet(np.zeros((190, 144, 4), np.uint8))


# --------------------------------------------------------------------------- head crop

def test_idle_frame_is_pattern_1_facing_down():
    layout = SheetLayout(16, 16, direction_order=("left", "down", "up", "right"),
                         pattern_order=(1, 2, 0))
    assert np.array_equal(idle_frame(native_sheet(layout), layout), tag(0, 1))


def test_head_crop_pads_to_square_over_the_background():
    frame = np.zeros((16, 16, 4), np.uint8)
    frame[2:6, 4:12] = (200, 0, 0, 255)  # an 8 x 4 head, transparent around it
    out = head_crop(frame, (4, 2, 8, 4), size=64, background=(0, 255, 0))
    assert out.shape == (64, 64, 3)
    # 8 x 4 grows to 8 x 8: 2 px of background above and below, scaled 8x
    assert (out[16:48] == (200, 0, 0)).all()
    assert (out[:16] == (0, 255, 0)).all() and (out[48:] == (0, 255, 0)).all()


def test_head_crop_beyond_the_frame_is_background():
    frame = np.full((8, 8, 3), 50, np.uint8)
    out = head_crop(frame, (4, 0, 8, 8), size=16, background=(9, 9, 9))
    assert (out[:, :8] == 50).all() and (out[:, 8:] == 9).all()


def test_head_crop_with_a_smooth_filter():
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[:, 4:] = 255
    out = head_crop(frame, (0, 0, 8, 8), size=64, interpolation="linear")
    assert 0 < out[32, 31, 0] < 255  # a soft edge, unlike pixel repetition


# --------------------------------------------------------------------------- previews

def walking_sheet() -> np.ndarray:
    frames = np.zeros((4, 3, 16, 16, 4), np.uint8)
    for d in range(4):
        for p in range(3):
            frames[d, p, 4:12, 3 + 2 * p:9 + 2 * p] = (40 * d + 30, 60 * p + 50, 200, 255)
    return character_sheet(frames, None)


def test_walk_frames_cycle_patterns_0_1_2_1_with_directions_side_by_side():
    sheet = walking_sheet()
    frames = slice_character_sheet(sheet)
    pictures = walk_frames(sheet, scale=1)
    assert len(pictures) == 4
    for picture, p in zip(pictures, (0, 1, 2, 1)):
        assert np.array_equal(picture, np.concatenate([frames[d, p] for d in range(4)], axis=1))


def read_animation(data: bytes):
    im = Image.open(io.BytesIO(data))
    out = []
    for i in range(im.n_frames):
        im.seek(i)
        out.append((np.asarray(im.convert("RGBA")), im.info.get("duration")))
    return im.format, out


def same_visible_pixels(a: np.ndarray, b: np.ndarray) -> bool:
    visible = b[..., 3] == 255
    return np.array_equal(a[..., 3], b[..., 3]) and np.array_equal(a[visible], b[visible])


@pytest.mark.parametrize("encode, fmt", [(walk_gif, "GIF"), (walk_apng, "PNG")])
def test_walk_animation_plays_the_cycle_with_transparency(encode, fmt):
    sheet = walking_sheet()
    expected = walk_frames(sheet, scale=2)
    kind, frames = read_animation(encode(sheet, scale=2, frame_ms=120))
    assert kind == fmt and len(frames) == 4
    for (got, duration), want in zip(frames, expected):
        assert duration == 120
        assert same_visible_pixels(got, want)


def test_walk_gif_with_many_colours_still_has_hard_transparency():
    rng = np.random.default_rng(5)
    sheet = random_rgba(rng, 64, 48)
    _, frames = read_animation(walk_gif(sheet, scale=1))
    want = walk_frames(sheet, scale=1)
    for (got, _), w in zip(frames, want):
        assert np.array_equal(got[..., 3], w[..., 3])


def test_contact_sheet_centres_each_picture_in_its_cell():
    a = np.full((4, 4, 3), 10, np.uint8)
    b = np.full((2, 6, 4), 20, np.uint8)
    out = contact_sheet([a, b, a], columns=2, pad=1, background=(0, 0, 0, 0))
    assert out.shape == (1 + 2 * 5, 1 + 2 * 7, 4)
    assert (out[1:5, 2:6] == (10, 10, 10, 255)).all()   # a, centred in a 6-wide cell
    assert (out[2:4, 8:14] == 20).all()                  # b, centred in a 4-high cell
    assert (out[6:10, 2:6, 3] == 255).all() and out[6:10, 8:14, 3].max() == 0
