#!/usr/bin/env python3
"""Independent PNG decoder for the Plot tests: only the standard library (zlib, struct, json).

Usage: check_png.py FILE [--pixel X,Y]... [--dump]

Checks the signature, every chunk's CRC-32, the IHDR fields (8-bit grayscale or RGB, no
interlace), chunk order (IHDR first, IDAT contiguous, IEND last), inflates the IDAT stream,
checks its length and undoes the five scanline filters. Prints one JSON object:
  {"ok": true, "width", "height", "channels", "distinct", "min", "max",
   "pixels": {"X,Y": [values]}, "raw": [all bytes, only with --dump]}
or {"ok": false, "error": "..."} with exit status 1.
"""
import json
import struct
import sys
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fail(message):
    print(json.dumps({"ok": False, "error": message}))
    sys.exit(1)


def paeth(left, up, up_left):
    estimate = left + up - up_left
    distance_left, distance_up, distance_up_left = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
    if distance_left <= distance_up and distance_left <= distance_up_left:
        return left
    if distance_up <= distance_up_left:
        return up
    return up_left


def decode(data):
    if data[:8] != SIGNATURE:
        fail("bad signature %r" % data[:8])
    offset, chunks = 8, []
    while offset < len(data):
        if offset + 8 > len(data):
            fail("truncated chunk header at byte %d" % offset)
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if len(body) != length or offset + 12 + length > len(data):
            fail("chunk %r at byte %d runs past the end" % (kind, offset))
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            fail("CRC mismatch in chunk %r at byte %d" % (kind, offset))
        chunks.append((kind, body))
        offset += 12 + length
    kinds = [kind for kind, _ in chunks]
    if not kinds or kinds[0] != b"IHDR" or kinds[-1] != b"IEND" or kinds.count(b"IEND") != 1:
        fail("bad chunk order %r" % kinds)
    idat_positions = [i for i, kind in enumerate(kinds) if kind == b"IDAT"]
    if not idat_positions or idat_positions != list(range(idat_positions[0], idat_positions[-1] + 1)):
        fail("IDAT chunks missing or not contiguous: %r" % kinds)
    header = chunks[0][1]
    if len(header) != 13:
        fail("IHDR has %d bytes, expected 13" % len(header))
    width, height, depth, color_type, compression, filter_method, interlace = struct.unpack(">IIBBBBB", header)
    if width == 0 or height == 0:
        fail("zero size %dx%d" % (width, height))
    if depth != 8 or color_type not in (0, 2) or compression != 0 or filter_method != 0 or interlace != 0:
        fail("unsupported IHDR depth=%d color=%d compression=%d filter=%d interlace=%d"
             % (depth, color_type, compression, filter_method, interlace))
    channels = 1 if color_type == 0 else 3
    try:
        raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    except zlib.error as error:
        fail("inflate failed: %s" % error)
    stride = width * channels
    if len(raw) != height * (stride + 1):
        fail("inflated %d bytes, expected %d" % (len(raw), height * (stride + 1)))
    pixels = bytearray(height * stride)
    previous = bytearray(stride)
    for y in range(height):
        filter_type = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if filter_type == 0:
                predictor = 0
            elif filter_type == 1:
                predictor = left
            elif filter_type == 2:
                predictor = up
            elif filter_type == 3:
                predictor = (left + up) // 2
            elif filter_type == 4:
                predictor = paeth(left, up, up_left)
            else:
                fail("unknown filter type %d in row %d" % (filter_type, y))
            line[i] = (line[i] + predictor) & 0xFF
        pixels[y * stride:(y + 1) * stride] = line
        previous = line
    return width, height, channels, bytes(pixels)


def main(arguments):
    if not arguments:
        fail("usage: check_png.py FILE [--pixel X,Y]... [--dump]")
    path, requests, dump = arguments[0], [], False
    rest = arguments[1:]
    while rest:
        if rest[0] == "--pixel" and len(rest) >= 2:
            requests.append(rest[1])
            rest = rest[2:]
        elif rest[0] == "--dump":
            dump, rest = True, rest[1:]
        else:
            fail("unknown argument %r" % rest[0])
    with open(path, "rb") as handle:
        width, height, channels, pixels = decode(handle.read())
    colors = {bytes(pixels[i:i + channels]) for i in range(0, len(pixels), channels)}
    result = {"ok": True, "width": width, "height": height, "channels": channels,
              "distinct": len(colors), "min": min(pixels), "max": max(pixels), "pixels": {}}
    for request in requests:
        x, y = (int(part) for part in request.split(","))
        if not (0 <= x < width and 0 <= y < height):
            fail("pixel %s outside %dx%d" % (request, width, height))
        start = (y * width + x) * channels
        result["pixels"][request] = list(pixels[start:start + channels])
    if dump:
        result["raw"] = list(pixels)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
