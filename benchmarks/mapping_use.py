"""Which components of z does a model's mapping network use? (issues 14 and 20)

The default pack's models take the procedural renderers' vector as z, so every component
stands for a trait (docs/procedural.md). A model can only draw a trait that its mapping
passes on to w: a component the mapping ignores is a trait the model never learnt. For each
component this prints its *use*: the mean absolute derivative of w with respect to it (over
256 random z, summed over w's features), divided by the mean over all components. About 0.3
is what the input normalisation alone gives every component (z / rms(z)); a trait drawn from
its component alone needs well above that.

    python benchmarks/mapping_use.py [--pack DIR]
"""

from __future__ import annotations

import argparse

import torch

from rmmv_gan.packs import open_pack

TRAITS = {
    0: "skin tone", 1: "natural or fantasy hair", 2: "hair colour", 3: "hair lightness", 4: "hair style",
    5: "iris colour", 6: "outfit", 7: "main cloth hue", 8: "main cloth saturation", 9: "main cloth value",
    10: "second cloth hue", 11: "second cloth value", 12: "accessory hue", 13: "accessory saturation",
    14: "accessory value", 15: "metal", 16: "shoes", 17: "headwear", 18: "body accessory", 19: "skin warmth",
    20: "build", 21: "belt leather / fringe side", 22: "face shape", 23: "eye shape", 24: "eye size",
    25: "face width", 26: "eye spacing", 27: "fringe", 28: "neckline", 29: "hair volume",
    30: "ribbon, clip, earring", 31: "brow thickness", 32: "expression", 33: "head turn",
}


def mapping_use(G, count: int = 256, seed: int = 0) -> torch.Tensor:
    """[z_dim]: each component's mean |dw/dz_j| summed over w's features, over the mean of all."""
    z = torch.randn(count, G.z_dim, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
    w = G.mapping(z, None)[:, 0]  # [count, w_dim]
    use = torch.zeros(G.z_dim)
    for j in range(w.shape[1]):
        (grad,) = torch.autograd.grad(w[:, j].sum(), z, retain_graph=True)
        use += grad.abs().mean(0)
    return use / use.mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", default=None, help="pack folder (default: the embedded pack)")
    args = ap.parse_args()
    opened = open_pack(args.pack)
    uses = {name: mapping_use(getattr(opened, name)) for name in ("sprite", "face")}
    n = max(len(u) for u in uses.values())
    print(f"pack {opened.pack.name}: use of each z component by the mapping (1 = the mean)")
    print("| component | trait | sprite model | face model |")
    print("| --- | --- | --- | --- |")
    for j in range(n):
        cells = [f"{uses[m][j]:.2f}" if j < len(uses[m]) else "" for m in ("sprite", "face")]
        print(f"| {j} | {TRAITS.get(j, '')} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
