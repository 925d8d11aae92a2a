"""Minimal raw Kafka wire helpers (request framing, a few encoders/decoders) for black-box tests."""
import socket
import struct
import time


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def kbytes(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items):
    return i32(len(items)) + b"".join(items)


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def header_v1(api_key, version, corr, client_id="sluice-compat"):
    return i16(api_key) + i16(version) + i32(corr) + string(client_id)


def frame(payload):
    return i32(len(payload)) + payload


def request(api_key, version, corr, body, client_id="sluice-compat", flexible=False):
    h = header_v1(api_key, version, corr, client_id)
    if flexible:
        h += b"\x00"  # empty TAG_BUFFER (request header v2)
    return frame(h + body)


class Reader:
    def __init__(self, data, pos=0):
        self.d = data
        self.p = pos

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError("short read: need %d at %d of %d" % (n, self.p, len(self.d)))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, fn):
        n = self.i32()
        return None if n < 0 else [fn(self) for _ in range(n)]

    def remaining(self):
        return len(self.d) - self.p


def connect(bootstrap, timeout=10):
    host, _, port = bootstrap.rpartition(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(sock, n, timeout=10):
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d/%d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_response(sock, timeout=10):
    """Returns (correlation_id, body_bytes) of one response (header v0)."""
    size = struct.unpack(">i", recv_exact(sock, 4, timeout))[0]
    assert 4 <= size < 200 * 1024 * 1024, "absurd response size %d" % size
    data = recv_exact(sock, size, timeout)
    return struct.unpack(">i", data[:4])[0], data[4:]


def wait_closed(sock, timeout=10):
    """True if the peer closes the connection (EOF or reset) within timeout; reads and discards data."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not d:
            return True
    return False


# ------------------------------------------------------------------ specific APIs
def api_versions_v0_parse(body):
    r = Reader(body)
    err = r.i16()
    keys = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    return err, keys


def fetch_v4(bootstrap, topic, partition, offset, max_bytes=4 * 1024 * 1024, isolation=0):
    """Raw Fetch v4 of one partition. Returns (error, high_watermark, records_bytes)."""
    body = (i32(-1) + i32(100) + i32(1) + i32(max_bytes) + i8(isolation) +
            array([string(topic) + array([i32(partition) + i64(offset) + i32(max_bytes)])]))
    s = connect(bootstrap)
    try:
        s.sendall(request(1, 4, 77, body))
        corr, resp = recv_response(s)
    finally:
        s.close()
    assert corr == 77
    r = Reader(resp)
    r.i32()  # throttle
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (
        r.i32(), r.i16(), r.i64(), r.i64(),
        r.array(lambda r: (r.i64(), r.i64())),
        r.bytes_()))))
    (tname, parts), = topics
    assert tname == topic
    (pidx, err, hw, _lso, _aborted, records), = parts
    assert pidx == partition
    return err, hw, records or b""


def batch_headers(records):
    """Parse the v2 batch headers in a Fetch records blob: list of dicts (whole batches only)."""
    out = []
    r = Reader(records)
    while r.remaining() >= 61:
        base = r.i64()
        length = r.i32()
        if r.remaining() < length:
            break
        start = r.p
        leader_epoch = r.i32()
        magic = r.i8()
        crc = r.u32()
        attrs = r.i16()
        last_delta = r.i32()
        r.p = start + length
        out.append(dict(base_offset=base, length=length, magic=magic, crc=crc, attributes=attrs,
                        last_offset_delta=last_delta, leader_epoch=leader_epoch))
    return out


CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
