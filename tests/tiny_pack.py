"""Tiny models and packs built here, for the tests of the face step's networks (encoder, refiner)."""

import json

import torch
from PIL import Image

from rmmv_gan.models import new_network, save_networks
from rmmv_gan.packs import init_pack
from rmmv_gan.sheets import character_sheet, face_sheet, native_to_frames


def tiny_generator(seed, init_res):
    torch.manual_seed(seed)
    return new_network("G", "stylegan2", z_dim=8, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                       channel_base=128, channel_max=16, init_res=init_res, num_fp16_res=0, conv_clamp=None,
                       mapping_kwargs=dict(num_layers=2))


def make_tiny_pack(root):
    """A pack of two tiny models: sprites 12 x 16 (4-px frames), faces 12 x 12; 2 projection steps."""
    save_networks(root / "s.safetensors", {"G": tiny_generator(1, [4, 3])})
    save_networks(root / "f.safetensors", {"G": tiny_generator(2, [3, 3])})
    init_pack(root / "pack", root / "s.safetensors", root / "f.safetensors")
    manifest = json.loads((root / "pack" / "pack.json").read_text())
    manifest["projection"]["steps"] = 2
    (root / "pack" / "pack.json").write_text(json.dumps(manifest))
    return root / "pack"


def native_sheet(opened, seed):
    with torch.no_grad():
        img = opened.sprite(torch.randn(1, opened.sprite.z_dim, generator=torch.Generator().manual_seed(seed)), None)
    return (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def matched_game(root, opened, n=3):
    """A game folder holding n `$` characters and their face sheets, drawn by the tiny models."""
    chars, faces = root / "img" / "characters", root / "img" / "faces"
    chars.mkdir(parents=True)
    faces.mkdir(parents=True)
    for i in range(n):
        sheet = character_sheet(native_to_frames(native_sheet(opened, 10 + i), opened.pack.layout))
        with torch.no_grad():
            f = opened.face(torch.randn(1, opened.face.z_dim, generator=torch.Generator().manual_seed(20 + i)), None)
        face = (f[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
        Image.fromarray(sheet).save(chars / f"$c{i}.png")
        Image.fromarray(face_sheet([face] * 8)).save(faces / f"c{i}.png")
    return root
