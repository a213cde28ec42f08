#!/usr/bin/env python3
"""Writes icons/tray-template.png, the macOS menu-bar template of icons/tray.png: black, with
the white letter knocked out of the tile (macOS draws a template in the menu bar's colour).
Standard library only. The other icons come from `tauri icon icons/icon.png -o icons`
(the Tauri CLI, e.g. `npx @tauri-apps/cli icon ...`)."""

import struct
import zlib
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "icons"


def read_rgba(path: Path) -> tuple[bytes, list[bytearray]]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    header = dict(chunks)[b"IHDR"]
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, color, interlace) == (8, 6, 0), "8-bit RGBA, not interlaced"
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    stride, rows, prev = width * 4, [], bytearray(width * 4)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 4] if i >= 4 else 0
            b = prev[i]
            c = prev[i - 4] if i >= 4 else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return header, rows


def write_png(path: Path, header: bytes, rows: list[bytes]) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"".join(b"\x00" + bytes(r) for r in rows), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def main() -> None:
    header, rows = read_rgba(ICONS / "tray.png")
    template = []
    for row in rows:
        out = bytearray(len(row))
        for x in range(0, len(row), 4):
            r, g, b, alpha = row[x:x + 4]
            white = min(r, g, b) / 255
            out[x + 3] = round(alpha * (1 - white))
        template.append(out)
    write_png(ICONS / "tray-template.png", header, template)


if __name__ == "__main__":
    main()
