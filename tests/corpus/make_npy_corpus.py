#!/usr/bin/env python3
"""Write the .npy test corpus: valid files saved by numpy itself (every
supported dtype, both byte orders, format versions 1.0, 2.0 and 3.0) and
hostile files built byte by byte.  Run with Debian's /usr/bin/python3
(numpy); the outputs are committed."""
import io, os, struct
import numpy as np

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npy")
os.makedirs(here, exist_ok=True)

def write(name, data):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)

def saved(arr, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()

# valid: a 2x3 array of 1..6 with odd positions negated (where signed)
vals = np.array([[1, -2, 3], [-4, 5, -6]])
write("valid_f4.npy", saved((vals * 0.5).astype("<f4")))
write("valid_f8.npy", saved((vals * 0.25).astype("<f8")))
write("valid_f4_big_endian.npy", saved((vals * 0.5).astype(">f4")))
write("valid_u1.npy", saved(np.abs(vals).astype("u1")))
write("valid_i1.npy", saved(vals.astype("i1")))
write("valid_i2.npy", saved((vals * 1000).astype("<i2")))
write("valid_i4.npy", saved((vals * 100000).astype("<i4")))
write("valid_i4_big_endian.npy", saved((vals * 100000).astype(">i4")))
write("valid_b1.npy", saved(vals > 0))
write("valid_v2.npy", saved((vals * 0.5).astype("<f4"), version=(2, 0)))
write("valid_v3.npy", saved((vals * 0.5).astype("<f4"), version=(3, 0)))
write("valid_scalar.npy", saved(np.array(2.5, dtype="<f8")))
write("valid_1d.npy", saved(np.arange(1, 6, dtype="u1")))
write("valid_images.npy", saved(np.arange(4 * 28 * 28).reshape(4, 1, 28, 28).astype("u1")))
write("valid_labels.npy", saved(np.array([3, 0, 9, 3], dtype="<i4")))

# hostile: handmade preamble + header + data
def npy(header, data=b"", version=(1, 0), hlen=None):
    h = header.encode("latin1") if isinstance(header, str) else header
    n = len(h) if hlen is None else hlen
    length = struct.pack("<H", n) if version[0] == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes(version) + length + h + data

def hdr(descr="'<f4'", fortran="False", shape="(2, 3)"):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape) + " \n"

six_f4 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
write("bad_empty.npy", b"")
write("bad_short.npy", b"\x93NUM")
write("bad_magic.npy", b"\x93NUMPZ\x01\x00" + npy(hdr(), six_f4)[8:])
write("bad_text.npy", b"this is a text file, not an array\n")
write("bad_version.npy", npy(hdr(), six_f4, version=(4, 0)))
write("bad_preamble.npy", b"\x93NUMPY\x02\x00\x10\x00")
write("bad_header_len.npy", npy(hdr(), b"", hlen=5000))
write("bad_huge_header_len.npy", npy(hdr(), six_f4, version=(2, 0), hlen=0xFFFFFFF0))
write("bad_dict_unclosed.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)\n",
                                   six_f4))
write("bad_dict_not_dict.npy", npy("[1, 2, 3]\n", six_f4))
write("bad_dict_unknown_key.npy",
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}\n", six_f4))
write("bad_dict_missing_key.npy", npy("{'descr': '<f4', 'shape': (2, 3)}\n", six_f4))
write("bad_dict_dup_key.npy",
      npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", six_f4))
write("bad_dict_escape.npy", npy(hdr(descr="'<f\\x34'"), six_f4))
write("bad_dict_unclosed_string.npy", npy("{'descr: '<f4'}\n", six_f4))
write("bad_dict_garbage_after.npy", npy(hdr().rstrip() + " junk\n", six_f4))
write("bad_fortran.npy", npy(hdr(fortran="True"), six_f4))
write("bad_fortran_value.npy", npy(hdr(fortran="Yes"), six_f4))
write("bad_dtype_complex.npy", npy(hdr(descr="'<c8'"), six_f4))
write("bad_dtype_object.npy", npy(hdr(descr="'|O'"), six_f4))
write("bad_dtype_pipe_f4.npy", npy(hdr(descr="'|f4'"), six_f4))
write("bad_shape_negative.npy", npy(hdr(shape="(-2, 3)"), six_f4))
write("bad_shape_zero.npy", npy(hdr(shape="(0, 3)"), b""))
write("bad_shape_not_tuple.npy", npy(hdr(shape="(6)"), six_f4))
write("bad_shape_float.npy", npy(hdr(shape="(2.0, 3)"), six_f4))
write("bad_shape_big_dim.npy", npy(hdr(shape="(99999999999999999999,)"), six_f4))
write("bad_shape_huge.npy", npy(hdr(shape="(2147483647, 2147483647, 2147483647)"), six_f4))
# 5 * 1718039348 * 2147418113 = 2^64 + 4: a product that wraps around to 4 elements
write("bad_shape_wrap.npy", npy(hdr(descr="'|u1'", shape="(5, 1718039348, 2147418113)"),
                                b"\x00" * 4))
write("bad_shape_many_dims.npy", npy(hdr(shape="(1, 1, 1, 1, 1, 1, 6)"), six_f4))
write("bad_truncated_data.npy", npy(hdr(), six_f4[:-3]))
write("bad_trailing_data.npy", npy(hdr(), six_f4 + b"\x00"))
write("bad_bool_value.npy", npy(hdr(descr="'|b1'", shape="(3,)"), b"\x00\x01\x02"))
write("bad_nonascii_v1.npy", npy(hdr(descr="'<f4\xe9'"), six_f4))
write("bad_utf8_v3.npy", npy(hdr(descr="'<f4'").encode() .replace(b"<f4", b"\xff\xfe4"),
                             six_f4, version=(3, 0)))
