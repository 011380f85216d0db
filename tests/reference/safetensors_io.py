"""Minimal safetensors writing/reading shared by the reference generators (hand-written so fixtures never depend on our C#).

Not a general reader: it trusts its own files. Written from the format description: u64 header length, JSON header
padded with spaces to a multiple of 8, then the tensors' little-endian bytes back to back.
"""
import json
import struct

import torch

SAFETENSORS_DTYPE = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.int64: "I64"}
TORCH_DTYPE = {name: dtype for dtype, name in SAFETENSORS_DTYPE.items()}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()  # numpy has no bfloat16; the bit pattern is what we store
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, torch tensor) in file order; metadata: optional str->str map."""
    header, offset, blobs = ({"__metadata__": metadata} if metadata else {}), 0, []
    for name, t in tensors:
        data = tensor_bytes(t)
        header[name] = {"dtype": SAFETENSORS_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_header(f):
    """The JSON header of an open safetensors file (metadata included); leaves f at the start of the data."""
    n = struct.unpack("<Q", f.read(8))[0]
    return json.loads(f.read(n))


def read_safetensors(path):
    with open(path, "rb") as f:
        header = read_header(f)
        data = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.int16 if entry["dtype"] == "BF16" else TORCH_DTYPE[entry["dtype"]])
        out[name] = (raw.view(torch.bfloat16) if entry["dtype"] == "BF16" else raw).reshape(entry["shape"])
    return out
