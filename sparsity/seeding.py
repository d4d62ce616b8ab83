"""Seeds derived from (seed, *purpose): every random thing owns its own stream.

``generator(seed, "trial", 3, "masks")`` always gives the same stream, independent of what else
drew random numbers before it, so masks, init, data order and noise never disturb each other.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "generator"]


def derive_seed(seed: int, *purpose: object) -> int:
    """A 63-bit seed from ``seed`` and a purpose path (strings or ints)."""
    text = "/".join([str(int(seed)), *(str(p) for p in purpose)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def generator(seed: int, *purpose: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``derive_seed(seed, *purpose)``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *purpose))
    return g
