#!/usr/bin/env python3
"""Write the IDX test corpus: valid files of every element type and hostile
ones.  The outputs are committed; rerun only to change the corpus."""
import gzip, os, struct

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "idx")
os.makedirs(here, exist_ok=True)

def idx(type_code, dims, payload):
    head = bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + payload

def write(name, data):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)

# valid: a 2x3 tensor of values 1..6 negated at odd positions, in every type
vals = [1, -2, 3, -4, 5, -6]
write("valid_u8.idx", idx(0x08, [2, 3], bytes([1, 2, 3, 4, 5, 6])))
write("valid_i8.idx", idx(0x09, [2, 3], struct.pack(">6b", *vals)))
write("valid_i16.idx", idx(0x0B, [2, 3], struct.pack(">6h", *[v * 1000 for v in vals])))
write("valid_i32.idx", idx(0x0C, [2, 3], struct.pack(">6i", *[v * 100000 for v in vals])))
write("valid_f32.idx", idx(0x0D, [2, 3], struct.pack(">6f", *[v * 0.5 for v in vals])))
write("valid_f64.idx", idx(0x0E, [2, 3], struct.pack(">6d", *[v * 0.25 for v in vals])))
# mtime=0: the same bytes on every run
write("valid_u8.idx.gz", gzip.compress(idx(0x08, [2, 3], bytes([1, 2, 3, 4, 5, 6])), mtime=0))

# hostile
write("bad_empty.idx", b"")
write("bad_short_header.idx", b"\x00\x00")
write("bad_magic.idx", b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
write("bad_type.idx", idx(0x0A, [1], b"\x00"))
write("bad_zero_ndim.idx", bytes([0, 0, 8, 0]))
write("bad_many_dims.idx", idx(0x08, [1] * 7, b"\x00"))
write("bad_dims_truncated.idx", bytes([0, 0, 8, 3]) + struct.pack(">I", 2))
write("bad_zero_dim.idx", idx(0x08, [0, 5], b""))
write("bad_negative_dim.idx", idx(0x08, [0xFFFFFFFF], b"\x00"))
write("bad_huge_dims.idx", idx(0x08, [0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF], b"\x00" * 16))
write("bad_overflow_dims.idx", idx(0x0E, [0x10000, 0x10000, 0x10000, 0x10000], b"\x00"))
# 5 * 1718039348 * 2147418113 = 2^64 + 4: a product that wraps around to 4 elements
write("bad_wrap_dims.idx", idx(0x08, [5, 1718039348, 2147418113], b"\x00" * 4))
write("bad_truncated_data.idx", idx(0x08, [100, 28, 28], b"\x00" * 1000))
write("bad_trailing.idx", idx(0x08, [2], b"\x01\x02\x03"))
good = gzip.compress(idx(0x08, [4, 4], bytes(range(16))), mtime=0)
write("bad_corrupt.idx.gz", good[:20] + bytes(b ^ 0x5A for b in good[20:]))
write("bad_truncated.idx.gz", good[: len(good) // 2])
