#!/usr/bin/env python3
"""An independent reader (Python's standard library only) of what mnist-train writes for
other tools, for the tests: a generic protocol-buffers decoder, ONNX's ModelProto and
TensorBoard's TFRecord-framed Event files (lengths and masked CRC-32C checked).

usage: decode_interop.py onnx FILE.onnx | decode_interop.py events FILE   (prints JSON)
"""
import json, struct, sys


def varint(data, i):
    shift = value = 0
    while True:
        b = data[i]; i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def fields(data):
    """[(field number, wire type, value)] of one message; value is an int or bytes."""
    out, i = [], 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
        elif wire == 1:
            value = data[i:i + 8]; i += 8
        elif wire == 2:
            n, i = varint(data, i)
            value = data[i:i + n]; i += n
            assert i <= len(data), "length-delimited field runs past the message"
        elif wire == 5:
            value = data[i:i + 4]; i += 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, wire, value))
    return out


def get(msg, number):
    return [v for n, _, v in fields(msg) if n == number]


def signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def onnx(path):
    model = open(path, "rb").read()
    graph = get(model, 7)[0]
    nodes = []
    for node in get(graph, 1):
        attributes = {}
        for a in get(node, 5):
            name = get(a, 1)[0].decode()
            kind = get(a, 20)[0]
            if kind == 1: attributes[name] = struct.unpack("<f", get(a, 2)[0])[0]
            elif kind == 2: attributes[name] = signed(get(a, 3)[0])
            elif kind == 7: attributes[name] = [signed(v) for v in get(a, 8)]
            elif kind == 3: attributes[name] = get(a, 4)[0].decode()
        nodes.append({"op": get(node, 4)[0].decode(), "inputs": [s.decode() for s in get(node, 1)],
                      "outputs": [s.decode() for s in get(node, 2)], "attributes": attributes})
    initializers = {}
    for t in get(graph, 5):
        dims = [signed(d) for d in get(t, 1)]
        dtype = get(t, 2)[0]
        raw = get(t, 9)[0]
        count = 1
        for d in dims: count *= d
        assert len(raw) == count * (4 if dtype == 1 else 8), "raw_data size"
        values = list(struct.unpack(f"<{count}{'f' if dtype == 1 else 'q'}", raw))
        initializers[get(t, 8)[0].decode()] = {"dims": dims, "type": dtype, "first": values[:4], "sum": sum(values)}
    def value_info(v):
        tensor = get(get(get(v, 2)[0], 1)[0], 2)[0]
        dims = []
        for d in get(tensor, 1):
            p = get(d, 2)
            dims.append(p[0].decode() if p else get(d, 1)[0])
        return {"name": get(v, 1)[0].decode(), "dims": dims}
    return {"ir_version": get(model, 1)[0], "producer": get(model, 2)[0].decode(),
            "opset": [get(o, 2)[0] for o in get(model, 8)],
            "metadata": {get(e, 1)[0].decode(): get(e, 2)[0].decode() for e in get(model, 14)},
            "nodes": nodes, "initializers": initializers,
            "inputs": [value_info(v) for v in get(graph, 11)], "outputs": [value_info(v) for v in get(graph, 12)]}


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def events(path):
    data = open(path, "rb").read()
    out, i = [], 0
    while i < len(data):
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[i + 8:i + 12])
        assert length_crc == masked(header), f"length CRC at byte {i}"
        body = data[i + 12:i + 12 + length]
        (body_crc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        assert body_crc == masked(body), f"data CRC at byte {i}"
        i += 16 + length
        event = {"wall_time": struct.unpack("<d", get(body, 1)[0])[0], "step": signed((get(body, 2) or [0])[0])}
        if get(body, 3):
            event["file_version"] = get(body, 3)[0].decode()
        for summary in get(body, 5):
            for v in get(summary, 1):
                tag = get(v, 1)[0].decode()
                if get(v, 2):
                    event.setdefault("scalars", {})[tag] = struct.unpack("<f", get(v, 2)[0])[0]
        out.append(event)
    return out


if __name__ == "__main__":
    print(json.dumps(onnx(sys.argv[2]) if sys.argv[1] == "onnx" else events(sys.argv[2])))
