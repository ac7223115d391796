#!/usr/bin/env python3
"""Seed corpus of tests/corpus/image/ for fuzz/fuzz_image.c: small PNG and
JPEG files (grey, RGB, RGBA, palette, progressive), truncated ones, a file
that is not an image, a PNG header claiming 65535 x 65535 pixels and one with
a bad CRC.  Needs Pillow (Debian's python3-pil); the output is committed."""
import os
import random
import struct
import zlib

from PIL import Image

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "image"))
random.seed(3)


def noise(mode, w, h):
    n = len(mode)
    im = Image.new(mode, (w, h))
    im.putdata([tuple(random.randrange(256) for _ in range(n)) if n > 1
                else random.randrange(256) for _ in range(w * h)])
    return im


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


noise("L", 4, 3).save("grey.png")
noise("RGB", 5, 4).save("rgb.png")
noise("RGBA", 3, 3).save("rgba.png")
noise("P", 4, 4).save("palette.png")
noise("L", 8, 8).save("grey.jpg", quality=90)
noise("RGB", 9, 7).save("rgb.jpg", quality=90)
noise("RGB", 16, 16).save("progressive.jpg", quality=80, progressive=True)
for name in ("rgb.png", "rgb.jpg"):
    data = open(name, "rb").read()
    open("cut" + name[3:], "wb").write(data[:len(data) // 2])
open("text.png", "wb").write(b"not an image")
sig = b"\x89PNG\r\n\x1a\n"
open("huge_header.png", "wb").write(
    sig + chunk(b"IHDR", struct.pack(">IIBBBBB", 65535, 65535, 8, 2, 0, 0, 0)) + chunk(b"IDAT", b""))
open("bad_crc.png", "wb").write(
    sig + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))[:-1] + b"x")
