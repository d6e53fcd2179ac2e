"""Reads an 8-bit grayscale PNG as nnc's trainers write it (one IDAT stream, filter 0 on every row), checking
each chunk's CRC, with Python's zlib alone: tests look at the pixels of `reconstruct` and `sample` grids."""
import struct
import zlib


def read_gray_png(path):
    """Returns (width, height, pixel) where pixel(x, y) is the gray level at column x, row y."""
    png = open(path, "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, pos = {}, 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + data)
        chunks[kind] = chunks.get(kind, b"") + data
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 0), ("not 8-bit gray", depth, color)
    rows = zlib.decompress(chunks[b"IDAT"])
    assert len(rows) == height * (width + 1) and all(rows[y * (width + 1)] == 0 for y in range(height))
    return width, height, lambda x, y: rows[y * (width + 1) + 1 + x]
