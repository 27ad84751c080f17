#!/usr/bin/env python3
"""Writes PNG files of every colour type and bit depth (and Adam7-interlaced ones) of one
small test picture, with Python's zlib and struct only, and expected.json: for each file
the gray value of every pixel, transparency composited over white, colour to gray as
PIL's convert("L") weights (0.299 R + 0.587 G + 0.114 B). The Swift decoder must agree.

usage: make_pngs.py OUT_DIR
"""
import json, os, struct, sys, zlib

W, H = 13, 9  # odd sizes exercise partial bytes and every Adam7 pass


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        if bits == 8:
            out.append(acc); acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


def filtered(rows, bpp, filter_cycle):
    """Each raw row with a filter byte; filters chosen in turn to exercise all five."""
    out, prev = bytearray(), bytes(len(rows[0])) if rows else b""
    for i, row in enumerate(rows):
        f = filter_cycle[i % len(filter_cycle)]
        enc = bytearray()
        for j, x in enumerate(row):
            a = row[j - bpp] if j >= bpp else 0
            b = prev[j]
            c = prev[j - bpp] if j >= bpp else 0
            if f == 0: p = 0
            elif f == 1: p = a
            elif f == 2: p = b
            elif f == 3: p = (a + b) // 2
            else:
                pa, pb, pc = abs(a + b - c - a), abs(a + b - c - b), abs(a + b - c - c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            enc.append((x - p) & 0xFF)
        out.append(f); out += enc
        prev = row
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, color_type, depth, pixels, interlace=False, plte=None, trns=None):
    """pixels[y][x] = tuple of samples."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    bpp = max(1, channels * depth // 8)
    def rows_of(xs, ys):
        return [pack_row([s for x in xs for s in pixels[y][x]], depth) for y in ys]
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            xs, ys = list(range(x0, W, dx)), list(range(y0, H, dy))
            if xs and ys:
                data += filtered(rows_of(xs, ys), bpp, [4, 0, 1, 2, 3])
    else:
        data = filtered(rows_of(range(W), range(H)), bpp, [0, 1, 2, 3, 4])
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, depth, color_type, 0, 0, 1 if interlace else 0))
    png += chunk(b"tEXt", b"Comment\x00made by make_pngs.py")  # an ancillary chunk to skip
    if plte is not None:
        png += chunk(b"PLTE", bytes(v for rgb in plte for v in rgb))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    compressed = zlib.compress(data, 9)
    png += chunk(b"IDAT", compressed[:len(compressed) // 2]) + chunk(b"IDAT", compressed[len(compressed) // 2:])
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main(out):
    os.makedirs(out, exist_ok=True)
    expected = {}
    def value(x, y, levels):
        return (x * 7 + y * 11 + x * y) % levels
    def gray_of(r, g, b):
        return 0.299 * r + 0.587 * g + 0.114 * b
    for interlace in (False, True):
        tag = "-i" if interlace else ""
        for depth in (1, 2, 4, 8, 16):
            m = (1 << depth) - 1
            px = [[(value(x, y, m + 1),) for x in range(W)] for y in range(H)]
            name = f"gray{depth}{tag}.png"
            write_png(f"{out}/{name}", 0, depth, px, interlace)
            expected[name] = [px[y][x][0] / m for y in range(H) for x in range(W)]
        for depth in (8, 16):
            m = (1 << depth) - 1
            rgb = [[(value(x, y, m + 1), value(y, x, m + 1), value(x + 3, y + 1, m + 1)) for x in range(W)] for y in range(H)]
            name = f"rgb{depth}{tag}.png"
            write_png(f"{out}/{name}", 2, depth, rgb, interlace)
            expected[name] = [gray_of(*rgb[y][x]) / m for y in range(H) for x in range(W)]
            ga = [[(value(x, y, m + 1), value(y + 2, x, m + 1)) for x in range(W)] for y in range(H)]
            name = f"graya{depth}{tag}.png"
            write_png(f"{out}/{name}", 4, depth, ga, interlace)
            expected[name] = [(lambda g, a: g / m * a / m + (1 - a / m))(*ga[y][x]) for y in range(H) for x in range(W)]
            rgba = [[rgb[y][x] + (value(x + 1, y + 5, m + 1),) for x in range(W)] for y in range(H)]
            name = f"rgba{depth}{tag}.png"
            write_png(f"{out}/{name}", 6, depth, rgba, interlace)
            expected[name] = [(lambda r, g, b, a: gray_of(r, g, b) / m * a / m + (1 - a / m))(*rgba[y][x])
                              for y in range(H) for x in range(W)]
        for depth in (1, 2, 4, 8):
            n = 1 << depth
            plte = [((i * 37) % 256, (i * 91) % 256, (i * 53 + 20) % 256) for i in range(n)]
            alpha = [(i * 67) % 256 for i in range(n)]
            idx = [[(value(x, y, n),) for x in range(W)] for y in range(H)]
            name = f"palette{depth}{tag}.png"
            write_png(f"{out}/{name}", 3, depth, idx, interlace, plte=plte, trns=bytes(alpha))
            expected[name] = [(lambda i: gray_of(*plte[i]) / 255 * alpha[i] / 255 + (1 - alpha[i] / 255))(idx[y][x][0])
                              for y in range(H) for x in range(W)]
    # A gray colour key: samples equal to 3 are transparent (white).
    px = [[(value(x, y, 16),) for x in range(W)] for y in range(H)]
    write_png(f"{out}/graykey4.png", 0, 4, px, trns=struct.pack(">H", 3))
    expected["graykey4.png"] = [1.0 if px[y][x][0] == 3 else px[y][x][0] / 15 for y in range(H) for x in range(W)]
    # PGM, binary 8 and 16 bits and plain.
    px8 = [value(x, y, 256) for y in range(H) for x in range(W)]
    with open(f"{out}/p5.pgm", "wb") as f:
        f.write(b"P5\n# a comment\n%d %d\n255\n" % (W, H) + bytes(px8))
    expected["p5.pgm"] = [v / 255 for v in px8]
    px16 = [value(x, y, 1000) for y in range(H) for x in range(W)]
    with open(f"{out}/p5-16.pgm", "wb") as f:
        f.write(b"P5 %d %d 999\n" % (W, H) + b"".join(struct.pack(">H", v) for v in px16))
    expected["p5-16.pgm"] = [min(v, 999) / 999 for v in px16]
    with open(f"{out}/p2.pgm", "w") as f:
        f.write("P2\n%d %d\n15\n" % (W, H) + " ".join(str(value(x, y, 16)) for y in range(H) for x in range(W)) + "\n")
    expected["p2.pgm"] = [value(x, y, 16) / 15 for y in range(H) for x in range(W)]
    json.dump({"width": W, "height": H, "files": expected}, open(f"{out}/expected.json", "w"))


if __name__ == "__main__":
    main(sys.argv[1])
