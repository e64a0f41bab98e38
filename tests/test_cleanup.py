"""Cleanup to transparency, on synthetic sprites whose true silhouette is known."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from rmmv_gan.sheets import SheetLayout, clean_frame, clean_sheet, estimate_background

F = 48  # frame size of the synthetic sheets
WHITE, GREY, GREEN = (255, 255, 255), (128, 128, 128), (60, 170, 90)


def near(bg, d):
    """A colour `d` levels from the background in every channel (towards mid grey)."""
    return tuple(int(v - d if v > 127 else v + d) for v in bg)


def draw_figure(rng, bg):
    """A small walking figure of several colours on `bg`, and its true silhouette. One part
    (the pack on its side) is only 45 levels per channel away from the background; the
    chest is nearly background-coloured but enclosed by the body."""
    img = np.empty((F, F, 3), np.uint8)
    img[:] = bg
    truth = np.zeros((F, F), np.uint8)
    cx, top, step = F // 2 + int(rng.integers(-3, 4)), int(rng.integers(3, 7)), int(rng.integers(-4, 5))

    def put(draw, colour):
        m = np.zeros((F, F), np.uint8)
        draw(m)
        img[m > 0] = colour
        truth[m > 0] = 1

    put(lambda m: cv2.rectangle(m, (cx - 7 + step, top + 30), (cx - 3 + step, top + 40), 1, -1), (40, 40, 120))
    put(lambda m: cv2.rectangle(m, (cx + 3 - step, top + 30), (cx + 7 - step, top + 40), 1, -1), (40, 40, 120))
    put(lambda m: cv2.ellipse(m, (cx, top + 22), (10, 10), 0, 0, 360, 1, -1), (200, 40, 40))
    put(lambda m: cv2.ellipse(m, (cx, top + 22), (5, 6), 0, 0, 360, 1, -1), near(bg, 12))
    put(lambda m: cv2.circle(m, (cx, top + 8), 8, 1, -1), (240, 200, 170))
    put(lambda m: cv2.ellipse(m, (cx, top + 4), (9, 5), 0, 180, 360, 1, -1), (60, 40, 20))
    put(lambda m: cv2.rectangle(m, (cx + 10, top + 16), (cx + 14, top + 28), 1, -1), near(bg, 45))
    return img, truth > 0


def jpeg(img, quality=75, subsampling=0):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def synthetic_sheet(bg, seed, sigma=5.0, subsampling=0, noisy=True):
    """A 3 x 4 sheet of figures (truth silhouettes alongside): Gaussian noise, then a JPEG
    round trip at quality 75."""
    rng = np.random.default_rng(seed)
    sheet = np.zeros((4 * F, 3 * F, 3), np.uint8)
    truth = np.zeros((4 * F, 3 * F), bool)
    for r in range(4):
        for c in range(3):
            sheet[r * F:(r + 1) * F, c * F:(c + 1) * F], truth[r * F:(r + 1) * F, c * F:(c + 1) * F] = \
                draw_figure(rng, bg)
    if noisy:
        sheet = np.clip(sheet + rng.normal(0, sigma, sheet.shape), 0, 255).astype(np.uint8)
        sheet = jpeg(sheet, 75, subsampling)
    return sheet, truth


def frame_ious(alpha, truth):
    out = []
    for y in range(0, truth.shape[0], F):
        for x in range(0, truth.shape[1], F):
            a, t = alpha[y:y + F, x:x + F] > 0, truth[y:y + F, x:x + F]
            out.append((a & t).sum() / (a | t).sum())
    return np.array(out)


LAYOUT = SheetLayout(F, F)


# JPEG at 4:4:4 keeps the blocking and ringing of quantisation at full colour resolution.
@pytest.mark.parametrize("bg", [WHITE, GREY, GREEN], ids=["white", "grey", "green"])
def test_mask_matches_drawn_figures_on_noisy_jpeg_sheets(bg):
    ious = np.concatenate([frame_ious(clean_sheet(img, LAYOUT)[..., 3], truth)
                           for img, truth in (synthetic_sheet(bg, seed) for seed in range(3))])
    assert ious.min() >= 0.97, f"worst frame IoU {ious.min():.4f}"


# PIL's default JPEG also halves the colour resolution (4:2:0); on neutral backgrounds the
# edges are still decided by brightness, which stays sharp.
@pytest.mark.parametrize("bg", [WHITE, GREY], ids=["white", "grey"])
def test_mask_matches_drawn_figures_with_chroma_subsampling(bg):
    ious = np.concatenate([frame_ious(clean_sheet(img, LAYOUT)[..., 3], truth)
                           for img, truth in (synthetic_sheet(bg, seed, subsampling=2)
                                              for seed in range(3))])
    assert ious.min() >= 0.97, f"worst frame IoU {ious.min():.4f}"


def test_crisp_sprites_come_out_exactly():
    img, truth = synthetic_sheet(GREEN, 0, noisy=False)
    out = clean_sheet(img, LAYOUT)
    assert np.array_equal(out[..., 3] > 0, truth)
    assert np.array_equal(out[..., :3][truth], img[truth])


def test_alpha_is_only_0_or_255():
    img, _ = synthetic_sheet(GREY, 1)
    assert set(np.unique(clean_sheet(img, LAYOUT, outline=True, palette=8)[..., 3])) == {0, 255}


def test_transparent_pixels_are_black():
    img, _ = synthetic_sheet(WHITE, 1)
    out = clean_sheet(img, LAYOUT)
    assert out[out[..., 3] == 0][:, :3].max() == 0


def test_background_is_estimated_from_frame_borders():
    img, _ = synthetic_sheet(GREEN, 2)
    assert np.abs(np.array(estimate_background(img, LAYOUT)) - GREEN).max() <= 3


def test_a_figure_touching_its_frame_edge_does_not_bleed_into_the_next_frame():
    img = np.full((F, 2 * F, 3), 255, np.uint8)
    img[10:30, 30:F] = (20, 20, 20)          # frame 0's figure runs up to the shared edge
    img[10:30, F + 10:F + 20] = (20, 20, 200)  # frame 1's figure stands apart
    out = clean_sheet(img, F, outline=True)
    right = out[:, F:]
    assert right[10:30, 0:9, 3].max() == 0   # nothing of frame 0 crosses over
    assert (out[10:30, 30:F, 3] == 255).all()
    assert (right[10:30, 10:20, :3] == (20, 20, 200)).all()


def test_margins_and_gaps_of_a_layout_become_transparent():
    layout = SheetLayout(16, 16, offset_x=2, offset_y=2, gap_x=2, gap_y=2)
    w, h = layout.size
    img = np.full((h + 2, w + 2, 3), 255, np.uint8)
    img[0:2] = 0  # dark junk in the top margin
    for x, y, fw, fh in layout.boxes():
        img[y + 4:y + 12, x + 4:x + 12] = (200, 30, 30)
    out = clean_sheet(img, layout, background=(255, 255, 255))
    assert out[0:2, :, 3].max() == 0
    assert out[:, 18:20, 3].max() == 0  # the gap between the first two columns
    assert (out[2 + 4:2 + 12, 2 + 4:2 + 12, 3] == 255).all()


def test_given_background_is_used_instead_of_the_estimate():
    img = np.full((32, 32, 3), 200, np.uint8)
    img[:, :20] = 0  # the estimate from borders would say 0 or 200; the caller knows better
    img[8:16, 24:28] = 90
    out = clean_frame(img, background=(200, 200, 200))
    assert (out[:, :20, 3] == 255).all() and out[:, 28:, 3].max() == 0


def test_specks_are_removed():
    img = np.full((F, F, 3), 255, np.uint8)
    img[10:40, 15:30] = (30, 30, 90)
    img[5:7, 40:42] = (0, 0, 0)     # a 2 x 2 speck far off
    img[44, 5] = (0, 0, 0)           # a single dead pixel
    out = clean_frame(img)
    assert out[5:7, 40:42, 3].max() == 0 and out[44, 5, 3] == 0
    assert (out[10:40, 15:30, 3] == 255).all()


def test_attached_parts_are_kept_and_distant_ones_dropped():
    img = np.full((F, F, 3), 255, np.uint8)
    img[10:40, 15:30] = (30, 30, 90)  # the body
    img[6:9, 17:28] = (150, 90, 20)   # a hat floating 1 px above it
    img[20:30, 38:46] = (30, 200, 30)  # a separate blob 8 px away
    out = clean_frame(img)
    assert (out[6:9, 17:28, 3] == 255).all()
    assert out[20:30, 38:46, 3].max() == 0


def test_enclosed_background_coloured_areas_stay_opaque():
    img = np.full((F, F, 3), 255, np.uint8)
    img[10:40, 10:38] = (30, 30, 30)
    img[16:34, 16:32] = (250, 250, 250)  # a white shirt inside the outline
    assert (clean_frame(img)[16:34, 16:32, 3] == 255).all()
    assert clean_frame(img, fill_holes=False)[20:30, 20:28, 3].max() == 0


def test_outline_is_a_1px_dark_ring_outside_the_figure():
    img = np.full((F, F, 3), 255, np.uint8)
    img[10:30, 10:20] = (200, 50, 50)
    out = clean_frame(img, outline=(1, 2, 3))
    assert (out[10:30, 10:20, :3] == (200, 50, 50)).all()
    ring = np.zeros((F, F), bool)
    ring[9:31, 9:21] = True
    ring[10:30, 10:20] = False
    assert (out[ring] == (1, 2, 3, 255)).all()
    assert (out[..., 3] > 0).sum() == 22 * 12


def test_palette_reduces_colours_deterministically():
    img, _ = synthetic_sheet(WHITE, 3)
    a = clean_sheet(img, LAYOUT, palette=6)
    b = clean_sheet(img, LAYOUT, palette=6)
    opaque = a[a[..., 3] == 255][:, :3]
    assert len(np.unique(opaque, axis=0)) <= 6
    assert np.array_equal(a, b)
    assert np.array_equal(a[..., 3], clean_sheet(img, LAYOUT)[..., 3])  # same silhouette


def test_cleaning_a_clean_rgba_sheet_changes_nothing():
    img, _ = synthetic_sheet(GREY, 4)
    once = clean_sheet(img, LAYOUT)
    assert np.array_equal(clean_sheet(once, LAYOUT), once)


def test_an_empty_frame_is_fully_transparent():
    img = np.full((F, F, 3), 128, np.uint8)
    assert clean_frame(img)[..., 3].max() == 0


def test_transparent_pixels_never_become_opaque():
    img = np.zeros((F, F, 4), np.uint8)
    img[10:40, 10:38] = (30, 30, 30, 255)
    img[20:30, 20:28, 3] = 0  # a see-through hole that is meant
    out = clean_frame(img)
    assert out[20:30, 20:28, 3].max() == 0
    assert (out[10:20, 10:38, 3] == 255).all()
