#!/usr/bin/env python3
"""Write the safetensors test corpus (tests/corpus/safetensors/).  The outputs
are committed; rerun only to change the corpus (the reference writer orders
metadata keys at random, so valid_model.safetensors may change bytes but not
content).

Valid files written by the reference implementation (the `safetensors`
package with torch: Debian's /usr/bin/python3 has torch; safetensors comes
from PyPI, e.g. `python3 -m venv --system-site-packages /tmp/st &&
/tmp/st/bin/pip install safetensors`):
  valid_model.safetensors   the state_dict of Sequential(Linear(3,4), ReLU(),
                            Linear(4,2)), element k of the t-th tensor =
                            ((5k + 3t) % 11 - 5) / 4, metadata format=pt
  valid_dtypes.safetensors  one tensor per common dtype, a scalar, an empty one
Files written by hand here (torch 1.13 has no float8):
  valid_rare_dtypes.safetensors, valid_unpadded.safetensors
and the hostile files bad_*.safetensors.  When the package is available the
script also checks every file against the reference reader: valid files must
load, bad ones must be rejected, except the few where nabla is deliberately
stricter (listed in STRICTER)."""
import json, os, struct, sys

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")
os.makedirs(here, exist_ok=True)

try:
    import torch
    from safetensors.torch import save_file
    from safetensors import deserialize
except ImportError:
    sys.exit("needs torch and the safetensors package (see the docstring)")


def write(name, data):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)


def raw(header, data=b"", n=None):
    """A file from a header given as bytes/str (used verbatim) or a dict."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8")
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# ---------------------------------------------------------------- valid

model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
with torch.no_grad():
    for t, (name, p) in enumerate(model.state_dict().items()):
        vals = [((5 * k + 3 * t) % 11 - 5) / 4 for k in range(p.numel())]
        p.copy_(torch.tensor(vals, dtype=torch.float32).reshape(p.shape))
save_file(model.state_dict(), os.path.join(here, "valid_model.safetensors"),
          metadata={"format": "pt", "source": "make_safetensors_corpus.py"})

save_file({
    "f64": torch.tensor([[-0.5, -0.25, 0.0], [0.25, 0.5, 0.75]], dtype=torch.float64),
    "f32": torch.tensor([1.5, -2.25, 3.0], dtype=torch.float32),
    # half: ordinary, largest finite, smallest normal, smallest subnormal, -0
    "f16": torch.tensor([[0.5, -1.0, 65504.0], [2.0**-14, 2.0**-24, -0.0]], dtype=torch.float16),
    "bf16": torch.tensor([1.0, -2.5, 2.0**100, 2.0**-130], dtype=torch.bfloat16),
    "i64": torch.tensor([-5, 2**40], dtype=torch.int64),
    "i32": torch.tensor([-7, 2**30], dtype=torch.int32),
    "i16": torch.tensor([-300, 300], dtype=torch.int16),
    "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "u8": torch.tensor([0, 1, 255], dtype=torch.uint8),
    "bool": torch.tensor([True, False, False, True]),
    "scalar": torch.tensor(42.0),
    "empty": torch.zeros(0, 3),
}, os.path.join(here, "valid_dtypes.safetensors"))

# Rare dtypes, sub-byte ones included (F4: 2 per byte; F6: 4 per 3 bytes).
rare = [("F8_E4M3", [2], 2), ("F8_E5M2", [2], 2), ("F8_E8M0", [1], 1),
        ("F8_E4M3FNUZ", [1], 1), ("F8_E5M2FNUZ", [1], 1), ("F4", [2, 2], 2),
        ("F6_E2M3", [4], 3), ("F6_E3M2", [4], 3), ("C64", [1], 8), ("U16", [2], 4),
        ("U32", [1], 4), ("U64", [1], 8)]
head, data = {}, b""
for dtype, shape, size in rare:
    head[dtype.lower()] = entry(dtype, shape, len(data), len(data) + size)
    data += bytes((len(data) + i) % 256 for i in range(size))
write("valid_rare_dtypes.safetensors", raw(head, data))
# no padding, odd header length, escaped non-ASCII name, UTF-8 metadata
write("valid_unpadded.safetensors",
      raw('{"__metadata__":{"note":"gr\u00fc\u00dfe \u2713"},"na\\u00efve":'
          '{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}', b"\x01\x02\x03"))

# ---------------------------------------------------------------- hostile

W = {"w": entry("F32", [2], 0, 8)}
D8 = b"\x00" * 8
bad = {
    "bad_empty": b"",
    "bad_short": b"\x10\x00\x00\x00\x00",
    "bad_header_too_big": raw(b"{}", b"", n=100_000_001),
    "bad_header_past_end": raw(b"{}" + b" " * 90, b"", n=1000),
    "bad_utf8": raw(b'{"__metadata__":{"a":"\xff"}}'),
    "bad_utf8_overlong": raw(b'{"__metadata__":{"a":"\xc0\xaf"}}'),
    "bad_utf8_surrogate": raw(b'{"__metadata__":{"a":"\xed\xa0\x80"}}'),
    "bad_utf8_truncated": raw(b'{"__metadata__":{"a":"\xe2\x82"}}'),
    "bad_json_truncated": raw(b'{"w":{"dtype":"F32",'),
    "bad_json_trailing": raw(b'{} x'),
    "bad_json_two_values": raw(b'{}{}'),
    "bad_json_control_char": raw(b'{"__metadata__":{"a":"x\x01y"}}'),
    "bad_json_nul_escape": raw(b'{"__metadata__":{"a":"x\\u0000y"}}'),
    "bad_json_bad_escape": raw(b'{"__metadata__":{"a":"\\q"}}'),
    "bad_json_lone_surrogate": raw(b'{"__metadata__":{"a":"\\ud800"}}'),
    "bad_json_leading_zero": raw(b'{"w":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}', D8),
    "bad_json_plus": raw(b'{"w":{"dtype":"F32","shape":[+2],"data_offsets":[0,8]}}', D8),
    "bad_json_trailing_comma": raw(b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}', D8),
    "bad_json_single_quotes": raw(b"{'w':1}"),
    "bad_json_deep": raw(b'{"__metadata__":' + b"[" * 100 + b"]" * 100 + b"}"),
    "bad_json_long_array": raw({"w": entry("U8", [1] * 100, 0, 1)}, b"\0"),
    "bad_not_object": raw(b"[1,2]"),
    "bad_not_object_string": raw(b'"w"'),
    "bad_entry_not_object": raw({"w": 5}),
    "bad_unknown_dtype": raw({"w": entry("F33", [2], 0, 8)}, D8),
    "bad_dtype_lowercase": raw({"w": entry("f32", [2], 0, 8)}, D8),
    "bad_dtype_not_string": raw({"w": {"dtype": 7, "shape": [2], "data_offsets": [0, 8]}}, D8),
    "bad_metadata_number": raw({"__metadata__": {"a": 1}}),
    "bad_metadata_nested": raw({"__metadata__": {"a": {"b": "c"}}}),
    "bad_metadata_null": raw({"__metadata__": {"a": None}}),
    "bad_metadata_not_object": raw({"__metadata__": "x"}),
    "bad_duplicate_names": raw(b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                               b'"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', D8),
    "bad_duplicate_escaped": raw(b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                 b'"\\u0077":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', D8),
    "bad_duplicate_metadata": raw(b'{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"}}'),
    "bad_duplicate_metadata_key": raw(b'{"__metadata__":{"a":"1","a":"2"}}'),
    "bad_duplicate_field": raw(b'{"w":{"dtype":"F32","dtype":"F16","shape":[2],'
                               b'"data_offsets":[0,8]}}', D8),
    "bad_unknown_field": raw({"w": dict(entry("F32", [2], 0, 8), foo=1)}, D8),
    "bad_missing_field": raw({"w": {"dtype": "F32", "shape": [2]}}, D8),
    "bad_gap": raw({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 12, 20)}, b"\0" * 20),
    "bad_overlap": raw({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, b"\0" * 12),
    "bad_end_before_begin": raw({"w": entry("F32", [0], 8, 4)}, D8),
    "bad_first_not_zero": raw({"w": entry("F32", [2], 4, 12)}, b"\0" * 12),
    "bad_data_not_at_end": raw(W, b"\0" * 12),
    "bad_no_tensors_but_data": raw({}, D8),
    "bad_offsets_past_end": raw({"w": entry("U8", [1000], 0, 1000)}, D8),
    "bad_offsets_huge": raw({"w": entry("U8", [2], 0, 2**63)}, D8),
    "bad_offsets_not_pair": raw({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, D8),
    "bad_numel_overflow": raw({"w": entry("F64", [2147483647] * 4, 0, 8)}, D8),
    "bad_size_mismatch": raw({"w": entry("F32", [2, 3], 0, 20)}, b"\0" * 20),
    "bad_subbyte": raw({"w": entry("F4", [3], 0, 2)}, b"\0\0"),
    "bad_shape_negative": raw({"w": entry("F32", [-1, 2], 0, 8)}, D8),
    "bad_shape_float": raw({"w": entry("F32", [2.5], 0, 8)}, D8),
    "bad_shape_float_integral": raw(b'{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', D8),
    "bad_shape_exponent": raw(b'{"w":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', D8),
    "bad_shape_huge": raw(b'{"w":{"dtype":"F32","shape":[99999999999999999999],'
                          b'"data_offsets":[0,8]}}', D8),
    "bad_shape_beyond_int": raw({"w": entry("U8", [3000000000], 0, 8)}, D8),
    "bad_shape_too_many_dims": raw({"w": entry("F32", [1, 1, 1, 1, 1, 1, 2], 0, 8)}, D8),
    "bad_shape_string": raw({"w": entry("F32", ["2"], 0, 8)}, D8),
    "bad_shape_not_array": raw({"w": entry("F32", 2, 0, 8)}, D8),
    "bad_offset_float": raw({"w": entry("F32", [2], 0, 8.0)}, D8),
}
for name, data in bad.items():
    write(name + ".safetensors", data)

# ---------------------------------------------------------------- cross-check

# Where nabla is stricter than the reference reader, on purpose.
STRICTER = {
    "bad_shape_too_many_dims",   # at most NB_MAX_DIMS = 6
    "bad_json_long_array",       # the same, caught before building the tree
    "bad_json_nul_escape",       # names and metadata are C strings
    "bad_duplicate_metadata_key",  # the reference keeps the last value silently
    "bad_unknown_field",         # an entry has exactly dtype, shape, data_offsets
}
problems = []
for name in sorted(os.listdir(here)):
    with open(os.path.join(here, name), "rb") as f:
        blob = f.read()
    try:
        deserialize(blob)
        accepted = True
    except Exception:
        accepted = False
    stem = name[: -len(".safetensors")]
    if name.startswith("valid_") and not accepted:
        problems.append(f"{name}: the reference reader rejects it")
    if name.startswith("bad_") and accepted and stem not in STRICTER:
        problems.append(f"{name}: the reference reader accepts it")
    if name.startswith("bad_") and not accepted and stem in STRICTER:
        print(f"note: {name} is rejected by the reference reader too")
for p in problems:
    print("warning:", p)
print(f"wrote {len(bad)} hostile and 4 valid files to {here}")
