#!/usr/bin/env python3
"""Independent reference for NF4 quantisation (QLoRA, Dettmers et al. 2023): codes, packing, scales, dequantised values.

Writes tests/reference/fixtures/nf4/nf4_reference.json:
  shape, block_size, code_values        the 16 NF4 values as float32 bit patterns (hex)
  weight                                the input weight, float32 bits (hex), row-major
  absmax                                per block of 64 (flattened weight, last block zero-padded), float32 bits
  codes                                 per element (padding included) the index of the nearest code value
  packed                                hex string, two codes per byte, even element in the high nibble (bitsandbytes order)
  dequantized                           float32(code value) * float32(absmax), float32 bits, original element count
Here the nearest code is found by argmin of |x/absmax - code| over all 16 values (ties to the lower index), not by
the midpoint search the C# code uses. The weight holds planted edge cases: an all-zero block, exact code values,
values on both sides of a midpoint, and a negative absmax element.

Run:   /usr/bin/python3 tests/reference/make_nf4_fixture.py           (rewrite the fixture)
       /usr/bin/python3 tests/reference/make_nf4_fixture.py --check   (regenerate in memory and compare with the file)
Needs Debian's python3-torch (1.13).
"""
import os, struct

import torch

from fixture_io import write_or_check

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "nf4", "nf4_reference.json")
BLOCK = 64
# QLoRA paper, Appendix E / bitsandbytes functional.py get_4bit_type("nf4").
NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
       0.7229568362236023, 1.0]


def bits(values):
    return ["%08x" % struct.unpack("<I", struct.pack("<f", float(v)))[0] for v in values]


def make_weight():
    g = torch.Generator().manual_seed(20240611)
    w = torch.randn(5, 60, generator=g, dtype=torch.float32) * 0.05
    flat = w.view(-1)
    flat[64:128] = 0.0                                # block 1: all zeros
    flat[128] = -0.5                                  # block 2: absmax from a negative value
    for i, c in enumerate(NF4):                       # exact code values times that absmax
        flat[129 + i] = torch.tensor(c, dtype=torch.float32) * 0.5
    flat[150] = 0.5 * (0.0 + 0.07958029955625534) / 2 * 0.999   # just below a midpoint -> code 7
    flat[151] = 0.5 * (0.0 + 0.07958029955625534) / 2 * 1.001   # just above -> code 8
    return w


def compute():
    w = make_weight()
    n = w.numel()
    blocks = (n + BLOCK - 1) // BLOCK
    flat = torch.zeros(blocks * BLOCK, dtype=torch.float32)
    flat[:n] = w.reshape(-1)
    grid = flat.view(blocks, BLOCK)
    absmax = grid.abs().max(dim=1).values
    safe = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    normalized = grid / safe.unsqueeze(1)
    code = torch.tensor(NF4, dtype=torch.float32)
    distance = (normalized.unsqueeze(-1).double() - code.double()).abs()   # (blocks, 64, 16)
    codes = distance.argmin(dim=-1).view(-1)
    pairs = codes.view(-1, 2)
    packed = (pairs[:, 0] * 16 + pairs[:, 1]).to(torch.uint8)
    deq = (code[codes].view(blocks, BLOCK) * absmax.unsqueeze(1)).view(-1)[:n]
    return {
        "shape": list(w.shape),
        "block_size": BLOCK,
        "code_values": bits(code.tolist()),
        "weight": bits(w.reshape(-1).tolist()),
        "absmax": bits(absmax.tolist()),
        "codes": codes.tolist(),
        "packed": bytes(packed.tolist()).hex(),
        "dequantized": bits(deq.tolist()),
    }


def main():
    write_or_check(FIXTURE, compute(), "nf4")


if __name__ == "__main__":
    main()
