"""The character pipeline: (pack, request) -> a walk sheet, an emotion face sheet, and how
they were made. Every step of ../shared/DESIGN.md is in this file, in order:

1. sprite w: z from the seed, mapped with truncation psi;
2. sprite style mix: the archetype's preset layers;
3. the walk sheet drawn, cleaned to transparency frame by frame, scaled to 48-px frames;
4. head crop: the standing, facing-down frame, cut at the pack's box, squared, on the face
   model's background, at the face model's size;
5. projection of the crop into the face model's W space;
6. face style mix: the archetype's preset layers;
7. emotions: each a further mix with an emotion preset (the first may be the identity);
8. the face sheet (576 x 288, faceIndex order).

It knows nothing of HTTP or of game folders: transports hand it a request and write what it
returns (see rmmv_gan.game). The same request gives the same pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import __version__
from .game import AssetNameError, safe_asset_name
from .latent import MAX_SEED, mix, to_uint8, truncate, z_from_seeds
from .packs import OpenPack, PackError
from .projector import ProjectionCancelled, ProjectionSettings, project
from .sheets import clean_sheet, face_sheet, head_crop, idle_frame, native_to_character_sheet

STAGES = ("sprite", "cleanup", "head", "projection", "faces")


class RequestError(ValueError):
    """A request that cannot be run; the message names the field."""


class Cancelled(RuntimeError):
    """The cancel callback asked the pipeline to stop."""


@dataclass
class CharacterRequest:
    archetype: str | None = None
    psi: float | None = None
    seed: int | None = None
    name: str | None = None
    steps: int | None = None
    emotions: list | None = None

    def resolved(self, pack, rng: np.random.Generator | None = None) -> "CharacterRequest":
        """Check every field against the pack and fill in the defaults (a random seed, the
        archetype's psi, a generated name)."""
        archetype = self.archetype if self.archetype is not None else pack.default_archetype
        if not isinstance(archetype, str) or archetype not in pack.archetypes:
            raise RequestError(f"archetype: unknown archetype {archetype!r} "
                               f"(this pack has: {', '.join(pack.archetypes)})")
        psi = self.psi if self.psi is not None else pack.archetypes[archetype].psi
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not np.isfinite(psi) or not -2 <= psi <= 2:
            raise RequestError(f"psi: must be a number in [-2, 2], not {psi!r}")
        seed = self.seed
        if seed is None:
            seed = int((rng or np.random.default_rng()).integers(0, MAX_SEED + 1))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
            raise RequestError(f"seed: must be a whole number in [0, {MAX_SEED}], not {seed!r}")
        steps = self.steps if self.steps is not None else pack.projection_steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 5000:
            raise RequestError(f"steps: must be a whole number in [1, 5000], not {steps!r}")
        emotions = self.emotions
        if emotions is not None and (not isinstance(emotions, list) or not all(isinstance(e, str) for e in emotions)):
            raise RequestError("emotions: must be a list of emotion names")
        try:
            emotion_names = [e.name for e in pack.select_emotions(emotions)]
        except PackError as exc:
            raise RequestError(str(exc)) from None
        name = self.name if self.name is not None else f"{archetype}_{seed}"
        try:
            name = safe_asset_name(name)
        except AssetNameError as exc:
            raise RequestError(f"name: {exc}") from None
        return CharacterRequest(archetype, float(psi), int(seed), name, int(steps), emotion_names)


@dataclass
class Character:
    request: CharacterRequest  # resolved: every field set
    walk_sheet: np.ndarray  # [192, 144, 4] uint8, MV `$` sheet (at 48-px frames)
    face_sheet: np.ndarray  # [288, 576, 4] uint8
    sprite_native: np.ndarray  # the model's own image, uint8 RGB
    head: np.ndarray  # the crop given to the projection, uint8 RGB
    faces: list  # one uint8 image per emotion, at the face model's size
    sprite_w: torch.Tensor  # [num_ws, w_dim] after the archetype mix
    face_w: torch.Tensor  # projected, after the archetype mix
    emotion_ws: list
    metadata: dict = field(default_factory=dict)


def _mixed(w, presets, model, m):
    if m.preset is None or not m.layers:
        return w
    return mix(w, presets[(model, m.preset)], m.layers)


def make_characters(opened: OpenPack, requests, progress: Callable | None = None,
                    cancel: Callable | None = None) -> list[Character]:
    """Run the pipeline for several requests; the sprite synthesis runs as one batch.

    progress(stage, fraction) is called as the work advances (fraction over all requests);
    cancel() returning True stops with Cancelled between steps.
    """
    pack, G_s, G_f = opened.pack, opened.sprite, opened.face
    reqs = [r.resolved(pack) for r in requests]
    n = len(reqs)
    device = G_s.mapping.w_avg.device
    timings = [{s: 0.0 for s in STAGES} for _ in reqs]

    def report(stage, fraction):
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled during {stage}")
        if progress is not None:
            progress(stage, fraction)

    # 1-3. Sprites: map, mix, draw (one batch), clean, lay out.
    report("sprite", 0.0)
    t = time.perf_counter()
    with torch.no_grad():
        z = z_from_seeds([r.seed for r in reqs], G_s.z_dim, device)
        ws = []
        for i, r in enumerate(reqs):
            w = G_s.mapping(z[i : i + 1], None, truncation_psi=r.psi)[0]
            ws.append(_mixed(w, opened.presets, "sprite", pack.archetypes[r.archetype].sprite))
        natives = to_uint8(G_s.synthesis(torch.stack(ws), noise_mode="const"))[..., :3]
    for tm in timings:
        tm["sprite"] = (time.perf_counter() - t) / n
    results = []
    for i, r in enumerate(reqs):
        arch = pack.archetypes[r.archetype]
        t = time.perf_counter()
        report("cleanup", i / n)
        clean = clean_sheet(natives[i], pack.layout, background=pack.sprite_background)
        walk = native_to_character_sheet(clean, pack.layout, pack.frame_size)
        timings[i]["cleanup"] = time.perf_counter() - t

        # 4. Head crop from the standing, facing-down frame (on the raw image: the face model
        # wants the background colour it was trained on, not transparency).
        t = time.perf_counter()
        report("head", i / n)
        size = G_f.img_shape[0]
        head = head_crop(idle_frame(natives[i], pack.layout), pack.head_box, size, background=pack.face_background)
        timings[i]["head"] = time.perf_counter() - t

        # 5-6. Projection into the face model, then the archetype's face layers.
        t = time.perf_counter()
        target = torch.from_numpy(head).permute(2, 0, 1).float().to(device) / 127.5 - 1
        settings = ProjectionSettings(steps=r.steps, loss=pack.projection_loss, wplus=pack.projection_wplus,
                                      optimize_noise=pack.projection_noise, seed=r.seed % (2**31))

        def projection_progress(step, total, _distance, i=i):
            report("projection", (i + step / total) / n)

        try:
            projected = project(G_f, target, settings, D=opened.face_D, progress=projection_progress,
                                cancel=cancel).ws[0]
        except ProjectionCancelled as exc:  # callers catch one Cancelled, whichever step stopped
            raise Cancelled(str(exc)) from None
        # A crop unlike the face model's images can pull w off the model's manifold (speckled
        # faces); the pack may pull it back toward the average face.
        if pack.projection_psi != 1:
            projected = truncate(projected[None], G_f.mapping.w_avg, pack.projection_psi)[0]
        face_w = _mixed(projected, opened.presets, "face", arch.face)
        timings[i]["projection"] = time.perf_counter() - t

        # 7-8. Emotions and the face sheet.
        t = time.perf_counter()
        report("faces", i / n)
        emotion_ws = [_mixed(face_w, opened.presets, "face", e.face) for e in pack.select_emotions(r.emotions)]
        with torch.no_grad():
            faces = list(to_uint8(G_f.synthesis(torch.stack(emotion_ws), noise_mode="const"))[..., :3])
        sheet = face_sheet(faces, pack.face_size)
        timings[i]["faces"] = time.perf_counter() - t
        meta = {
            "name": r.name, "seed": r.seed, "psi": r.psi, "archetype": r.archetype, "steps": r.steps,
            "emotions": r.emotions, "pack": pack.name, "pack_hash": opened.content_hash,
            "rmmv_gan_version": __version__, "timings": {k: round(v, 4) for k, v in timings[i].items()},
        }
        results.append(Character(r, walk, sheet, natives[i], head, faces, ws[i].cpu(), face_w.cpu(),
                                 [w.cpu() for w in emotion_ws], meta))
    report("faces", 1.0)
    return results


def make_character(opened: OpenPack, request: CharacterRequest, progress=None, cancel=None) -> Character:
    """One character: make_characters for a single request."""
    return make_characters(opened, [request], progress=progress, cancel=cancel)[0]
