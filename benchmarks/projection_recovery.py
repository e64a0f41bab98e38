"""PSNR recovered by projection: 5 images the golden StyleGAN2 model draws from known w
(seeds 10-14, class 0, psi 0.7), start (w_avg) and end, per loss.

    python benchmarks/projection_recovery.py [--golden ../shared/golden] [--vgg vgg16.pt]

Without --vgg the vgg row uses the test suite's TinyVGG stand-in (the real vgg16.pt is
never downloaded).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from rmmv_gan import load_discriminator, load_generator
from rmmv_gan.latent import map_seed
from rmmv_gan.projector import ProjectionSettings, project, psnr, w_stats


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--golden", default=str(Path(__file__).resolve().parents[2] / "shared" / "golden"))
    ap.add_argument("--vgg", default=None)
    args = ap.parse_args()
    path = Path(args.golden) / "sg2_c3_32.pkl"
    G, D = load_generator(path), load_discriminator(path)
    ws = torch.stack([map_seed(G, s, psi=0.7, class_idx=0) for s in range(10, 15)])
    vgg = args.vgg
    if vgg is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_projector import TinyVGG

        vgg = Path(tempfile.mkdtemp()) / "tiny_vgg.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.script(TinyVGG()).save(str(vgg))
    with torch.no_grad():
        targets = G.synthesis(ws, noise_mode="const")
        start = psnr(G.synthesis(w_stats(G, 0).w_avg.expand(5, G.num_ws, -1), noise_mode="const"), targets)
    print("start (w_avg): " + " ".join(f"{v:.1f}" for v in start.tolist()))
    print("| loss | space | steps | PSNR per target (dB) | min gain |")
    print("| --- | --- | --- | --- | --- |")
    for loss, wplus, steps in [("pixel", False, 300), ("discriminator", False, 300), ("vgg", False, 300),
                               ("pixel", False, 1000), ("pixel", True, 1000)]:
        r = project(G, targets, ProjectionSettings(steps=steps, loss=loss, wplus=wplus), D=D, vgg=vgg, class_idx=0)
        end = psnr(r.images, targets)
        print(f"| {loss} | {'W+' if wplus else 'W'} | {steps} | {' '.join(f'{v:.1f}' for v in end.tolist())} "
              f"| {(end - start).min():.1f} |", flush=True)


if __name__ == "__main__":
    main()
