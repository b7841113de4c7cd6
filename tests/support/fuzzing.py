"""Fuzzing harness: every loader edgekit runs on untrusted bytes, fed mutated inputs.

The contract of a loader: bytes in, a value or an `EdgekitError` out. Anything else is a
bug, and the harness reports it with the input that caused it:

- ``bug``: another exception type escaped (a ``KeyError`` from deep inside a parser);
- ``crash``: the process died (a signal from native code, or an exit);
- ``hang``: no answer within the target's time limit, twice in a row.

Each target runs in a worker process (``python tests/support/fuzzing.py --worker TARGET``) that
reads inputs from a pipe and answers with one JSON line per step; a worker that dies is
respawned, so a crash costs one input, not the run. Inputs come from real, valid seeds
(``tests/fuzz/seeds/``, made by ``tools/fuzz.py --make-seeds``) and the regression corpus
(``tests/fuzz/corpus/TARGET/``), changed by a seeded mutator: byte-level (bit flips,
interesting integers, insertion, deletion, chunk duplication, truncation, splicing) and
structure-aware (the JSON inside bundles and ``.keras`` archives, with hashes fixed up so
that the mutation reaches past the hash check; CSV and JSON sensor lines; the parts of a
multipart MJPEG stream, served to the camera source by a loopback HTTP server). An input
whose outcome was not seen before joins the pool of inputs to mutate.

Used by ``tests/e2e/test_fuzz.py`` (a fixed-seed, time-bounded run and the corpus replay) and
``tools/fuzz.py`` (the long run, minimizing, making seeds).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import faulthandler
import functools
import hashlib
import io
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SEEDS = REPO / "tests" / "fuzz" / "seeds"
CORPUS = REPO / "tests" / "fuzz" / "corpus"
EXPECTED_FAILURES = "expected-failures.json"  # per corpus folder: {file: why, and which fix is pending}
WORKER_MEMORY_BYTES = 3 << 30  # a mutated shape must fail to allocate, not take the machine's memory
MEMORY_FINDING_BYTES = 1 << 30  # an input that grows the worker's peak memory by more is a finding
MAX_POOL = 400
CRASH_STACK = "crash-stack.txt"  # faulthandler's dump in the worker's folder

# ---------------------------------------------------------------------------
# mutators

INTERESTING_8 = (0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x40)
INTERESTING_INTS = (0, 1, 2, 3, 4, 7, 8, 16, 32, 64, 100, 127, 128, 255, 256, 1000, 1024, 4096, 0x7FFF, 0x8000,
                    0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, -1, -2, -128, -32768, -(2**31))


class Mutator:
    """Seeded mutations of bytes (and, for some targets, of their structure)."""

    def __init__(self, rng: random.Random, pool: Sequence[bytes]) -> None:
        self.rng = rng
        self.pool = pool

    # byte level --------------------------------------------------------------------

    def bytes(self, data: bytes, rounds: int | None = None) -> bytes:
        rng = self.rng
        out = bytearray(data)
        for _ in range(rounds or 1 + min(7, int(rng.expovariate(0.7)))):
            out = bytearray(rng.choice(self._byte_ops)(self, out))
        return bytes(out)

    def _flip(self, b: bytearray) -> bytearray:
        if b:
            i = self.rng.randrange(len(b))
            b[i] ^= 1 << self.rng.randrange(8)
        return b

    def _set_byte(self, b: bytearray) -> bytearray:
        if b:
            b[self.rng.randrange(len(b))] = self.rng.choice((self.rng.randrange(256), *INTERESTING_8))
        return b

    def _set_int(self, b: bytearray) -> bytearray:
        rng = self.rng
        width = rng.choice((1, 2, 4, 4, 4, 8))
        if len(b) < width:
            return b
        value = rng.choice(INTERESTING_INTS + (len(b), len(b) - 1, len(b) + 1))
        value &= (1 << (8 * width)) - 1
        at = rng.randrange(len(b) - width + 1)
        if width == 4 and rng.random() < 0.5:
            at &= ~3  # flatbuffers and many headers are 4-aligned
        b[at : at + width] = value.to_bytes(width, rng.choice(("little", "little", "big")))
        return b

    def _arith(self, b: bytearray) -> bytearray:
        if len(b) >= 4:
            at = self.rng.randrange(len(b) - 3)
            value = int.from_bytes(b[at : at + 4], "little") + self.rng.randint(-35, 35)
            b[at : at + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
        return b

    def _insert(self, b: bytearray) -> bytearray:
        at = self.rng.randrange(len(b) + 1)
        n = self.rng.choice((1, 1, 2, 4, 8, 16, 64))
        fill = (bytes([self.rng.choice(INTERESTING_8)]) * n if self.rng.random() < 0.4
                else self.rng.randbytes(n))
        b[at:at] = fill
        return b

    def _delete(self, b: bytearray) -> bytearray:
        if len(b) > 1:
            at = self.rng.randrange(len(b))
            n = min(len(b) - at, self.rng.choice((1, 1, 2, 4, 8, 16, 64, 256)))
            del b[at : at + n]
        return b

    def _duplicate(self, b: bytearray) -> bytearray:
        if b:
            at = self.rng.randrange(len(b))
            chunk = b[at : at + self.rng.choice((1, 4, 16, 64, 256))]
            to = self.rng.randrange(len(b) + 1)
            b[to:to] = chunk * self.rng.choice((1, 1, 2, 8))
        return b

    def _copy_over(self, b: bytearray) -> bytearray:
        if len(b) > 2:
            n = self.rng.randint(1, min(64, len(b) // 2))
            src, dst = self.rng.randrange(len(b) - n + 1), self.rng.randrange(len(b) - n + 1)
            b[dst : dst + n] = b[src : src + n]
        return b

    def _truncate(self, b: bytearray) -> bytearray:
        return b[: self.rng.randrange(len(b) + 1)] if b else b

    def _splice(self, b: bytearray) -> bytearray:
        other = self.rng.choice(self.pool) if self.pool else b""
        if not other:
            return b
        return b[: self.rng.randrange(len(b) + 1)] + bytearray(other[self.rng.randrange(len(other) + 1):])

    def _number(self, b: bytearray) -> bytearray:
        """Replace an ASCII number (text formats: CSV, JSON, PNM headers) with an odd one."""
        spans = [m.span() for m in re.finditer(rb"-?\d+(\.\d+)?", bytes(b[:65536]))]
        if not spans:
            return self._set_byte(b)
        start, end = self.rng.choice(spans)
        b[start:end] = self.rng.choice(ODD_NUMBERS)
        return b

    _byte_ops: tuple[Callable[[Mutator, bytearray], bytearray], ...] = (
        _flip, _flip, _set_byte, _set_byte, _set_int, _set_int, _arith, _insert, _delete, _duplicate,
        _copy_over, _truncate, _splice, _number,
    )

    # JSON ----------------------------------------------------------------------------

    def json(self, data: bytes) -> bytes:
        """Change one node of a JSON document (falls back to bytes when it is not JSON)."""
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return self.bytes(data)
        for _ in range(1 + int(self.rng.expovariate(1.5))):
            document = self._json_once(document)
        text = json.dumps(document, allow_nan=True, ensure_ascii=self.rng.random() < 0.5,
                          sort_keys=self.rng.random() < 0.5, indent=self.rng.choice((None, 2)))
        deep = self.rng.randint(100, 200_000)
        text = text.replace(json.dumps(DEEP), "[" * deep + "]" * deep, 1)
        return text.encode("utf-8", "surrogatepass")

    def _odd(self) -> Any:
        """An odd JSON value, copied: later mutations must not change the table (or make a cycle)."""
        return copy.deepcopy(self.rng.choice(ODD_JSON))

    def _json_once(self, document: Any) -> Any:
        rng = self.rng
        slots = list(_json_slots(document))
        if not slots:
            return self._odd()
        parent, key = rng.choice(slots)
        value = parent[key]
        op = rng.randrange(7)
        if op == 0 and isinstance(parent, dict):
            del parent[key]
        elif op == 0 and isinstance(parent, list):
            parent.pop(key)
        elif op == 1:
            parent[key] = self._odd()
        elif op == 2:  # another node's value here (keeps types plausible)
            other_parent, other_key = rng.choice(slots)
            parent[key] = json.loads(json.dumps(other_parent[other_key]))
        elif op == 3 and isinstance(value, dict):
            value[rng.choice(("extra", "kind", "name", "shape", "dtype", "file", "", "\x00"))] = self._odd()
        elif op == 3 and isinstance(value, list):
            value.insert(rng.randrange(len(value) + 1), copy.deepcopy(rng.choice(value)) if value else self._odd())
        elif op == 4 and isinstance(value, bool):
            parent[key] = not value
        elif op == 4 and isinstance(value, (int, float)):
            try:
                parent[key] = rng.choice((value + 1, value - 1, -value, value * 1000, float(value),
                                          int(value) + 2**31, value / 3))
            except (OverflowError, ValueError):  # huge ints, NaN and infinities
                parent[key] = self._odd()
        elif op == 4 and isinstance(value, str):
            parent[key] = rng.choice((value + value, value[: len(value) // 2], value.upper(), "../" + value,
                                      "/" + value, value + "\x00", value * 200, "\ud800" + value))
        elif op == 5:
            parent[key] = [value] if rng.random() < 0.5 else {"value": value}
        else:
            parent[key] = str(value) if not isinstance(value, str) else _number_or(value)
        return document

    # archives --------------------------------------------------------------------------

    def zip(self, data: bytes, json_members: tuple[str, ...], rehash: bool) -> bytes:
        """Change a member of a ZIP archive (JSON members structurally) and write it back.

        Args:
            json_members: members holding JSON (bundle manifest, Keras config).
            rehash: fix the bundle manifest's sizes and sha256 afterwards (most of the
                time), so that the mutation reaches the code behind the hash check.
        """
        rng = self.rng
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [(info.filename, archive.read(info)) for info in archive.infolist()]
        except Exception:  # noqa: BLE001 - anything unreadable gets byte mutations
            return self.bytes(data)
        if not members:
            return self.bytes(data)
        op = rng.randrange(10)
        names = [name for name, _ in members]
        if op <= 3:  # a JSON member, structurally
            candidates = [i for i, name in enumerate(names) if name in json_members] or list(range(len(members)))
            i = rng.choice(candidates)
            members[i] = (members[i][0], self.json(members[i][1]))
        elif op <= 6:  # another member's bytes
            i = rng.randrange(len(members))
            members[i] = (members[i][0], self.bytes(members[i][1]))
        elif op == 7:  # rename, drop, duplicate or add a member
            i = rng.randrange(len(members))
            choice = rng.randrange(4)
            if choice == 0:
                members[i] = (rng.choice(("../evil", "/abs", "models/x.tflite", "manifest.json", "signature.json",
                                          "config.json", members[i][0] + "/", members[i][0].upper(), "")),
                              members[i][1])
            elif choice == 1 and len(members) > 1:
                members.pop(i)
            elif choice == 2:
                members.append(members[i])
            else:
                members.append((rng.choice(("extra.bin", "signature.json", "model.weights.h5", "metadata.json")),
                                rng.choice(self.pool) if self.pool else b"x"))
        elif op == 8:  # swap the contents of two members
            i, j = rng.randrange(len(members)), rng.randrange(len(members))
            members[i], members[j] = (members[i][0], members[j][1]), (members[j][0], members[i][1])
        else:
            rng.shuffle(members)
        if rehash and rng.random() < 0.8:
            members = _rehash_manifest(members)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names are wanted here
            out = _write_zip(members, compress=rng.random() < 0.3, comment=rng.random() < 0.05)
        return self._zip_header(out) if rng.random() < 0.25 else out

    def _zip_header(self, data: bytes) -> bytes:
        """Change one field of a local or central ZIP header: flags (encrypted, data
        descriptor), compression method, CRC, sizes, the local header's offset."""
        rng = self.rng
        headers = [(m.start(), False) for m in re.finditer(b"PK\x03\x04", data)] + \
            [(m.start(), True) for m in re.finditer(b"PK\x01\x02", data)]
        if not headers:
            return data
        at, central = rng.choice(headers)
        fields = ({"flags": (8, 2), "method": (10, 2), "crc": (16, 4), "compressed": (20, 4), "size": (24, 4),
                   "offset": (42, 4)} if central else
                  {"flags": (6, 2), "method": (8, 2), "crc": (14, 4), "compressed": (18, 4), "size": (22, 4)})
        name = rng.choice(sorted(fields))
        offset, width = fields[name]
        if at + offset + width > len(data):
            return data
        old = int.from_bytes(data[at + offset : at + offset + width], "little")
        if name == "flags":
            value = old ^ rng.choice((1, 8, 64, 2048))  # encrypted, data descriptor, strong encryption, UTF-8
        elif name == "method":
            value = rng.choice((0, 1, 6, 8, 9, 12, 14, 93, 95, 98, 99, 0xFFFF))
        else:
            value = rng.choice((0, 1, old - 1, old + 1, old * 2, 0xFFFFFFFF, 0x7FFFFFFF, rng.getrandbits(32)))
        value &= (1 << (8 * width)) - 1
        return data[: at + offset] + value.to_bytes(width, "little") + data[at + offset + width :]

    # sensor lines -----------------------------------------------------------------------

    def lines(self, data: bytes) -> bytes:
        """Line-level changes to CSV or JSON lines."""
        rng = self.rng
        lines = data.split(b"\n")
        for _ in range(1 + int(rng.expovariate(1.0))):
            op = rng.randrange(8)
            i = rng.randrange(len(lines))
            if op == 0 and len(lines) > 1:
                lines.pop(i)
            elif op == 1:
                lines.insert(i, lines[rng.randrange(len(lines))])
            elif op == 2:
                lines.insert(i, rng.choice(ODD_LINES))
            elif op == 3 and lines[i].lstrip().startswith(b"{"):
                lines[i] = self.json(lines[i]).replace(b"\n", b" ")
            elif op == 4:
                lines[i] = self._number(bytearray(lines[i])) if lines[i] else rng.choice(ODD_LINES)
            elif op == 5:
                lines[i] = lines[i].replace(b",", rng.choice((b";", b"\t", b",,", b", ", b"")))
            elif op == 6:
                lines[i] = lines[i] + b"\r"
            else:
                lines[i] = self.bytes(lines[i], rounds=1)
        return b"\n".join(lines)

    # MJPEG streams ----------------------------------------------------------------------

    def mjpeg(self, data: bytes) -> bytes:
        """Change a multipart MJPEG body part by part: its boundary line, its headers
        (Content-Length above all), its JPEG bytes, or which parts there are."""
        rng = self.rng
        marker = b"--" + MJPEG_BOUNDARY
        chunks = data.split(marker)
        if len(chunks) < 2:
            return self.bytes(data)
        lead, parts = chunks[0], chunks[1:]
        for _ in range(1 + int(rng.expovariate(1.2))):
            i = rng.randrange(len(parts))
            head, sep, body = parts[i].partition(b"\r\n\r\n")
            op = rng.randrange(10)
            if op <= 2 and sep:  # the JPEG bytes (their Content-Length kept right, or not)
                jpeg = body[:-2] if body.endswith(b"\r\n") else body
                jpeg = self.bytes(jpeg)
                if rng.random() < 0.7:
                    head = re.sub(rb"(?i)(content-length:\s*)\d+", b"\\g<1>%d" % len(jpeg), head)
                parts[i] = head + sep + jpeg + b"\r\n"
            elif op == 3 and sep:  # Content-Length: an odd number, or gone
                if re.search(rb"(?i)content-length", head) and rng.random() < 0.8:
                    number = rng.choice(ODD_NUMBERS + (b"%d" % (len(body) + rng.randint(-40, 40)), b"", b" ", b"-5"))
                    head = re.sub(rb"(?i)(content-length:[ \t]*)[^\r\n]*", lambda m, n=number: m.group(1) + n, head)
                else:
                    head += b"\r\nContent-Length: " + rng.choice(ODD_NUMBERS)
                parts[i] = head + sep + body
            elif op == 4:  # the part's headers, as lines
                lines = head.split(b"\r\n")
                j = rng.randrange(len(lines))
                choice = rng.randrange(5)
                if choice == 0 and len(lines) > 1:
                    lines.pop(j)
                elif choice == 1:
                    lines.insert(j, rng.choice(ODD_MJPEG_HEADERS))
                elif choice == 2:
                    lines[j] = lines[j].replace(b"\r", b"") + b"\n"
                elif choice == 3:
                    lines[j] = lines[j] * rng.choice((2, 100, 2000))
                else:
                    lines[j] = self.bytes(lines[j], rounds=1)
                parts[i] = b"\r\n".join(lines) + sep + body
            elif op == 5 and len(parts) > 1:  # a part gone
                parts.pop(i)
            elif op == 6:  # a part again (many times: a stream of the same frame)
                parts[i:i] = [parts[i]] * rng.choice((1, 1, 2, 30))
            elif op == 7:  # another part's JPEG here, or one from another pool input
                other = rng.choice(self.pool).split(marker) if self.pool else []
                donor = rng.choice(other[1:] or parts)
                parts[i] = head + sep + donor.partition(b"\r\n\r\n")[2]
            elif op == 8:  # the boundary line itself
                parts[i] = rng.choice((b"--", b"", b"\r\n", b"x", b" ", b"\n", b"\x00")) + parts[i]
                if rng.random() < 0.3:
                    parts[i] = parts[i].replace(b"\r\n", b"\n", 1)
            else:  # the stream cut inside a part
                parts[i] = parts[i][: rng.randrange(len(parts[i]) + 1)]
                del parts[i + 1 :]
        out = (lead + b"".join(marker + p for p in parts))[:MJPEG_MAX_BYTES]
        return self.bytes(out, rounds=1) if rng.random() < 0.15 else out


DEEP = "\x01deep\x01"  # placeholder replaced by a deeply nested list in the JSON text
ODD_NUMBERS = (b"0", b"-1", b"1e999", b"-1e999", b"nan", b"inf", b"1e-400", b"4294967296", b"18446744073709551616",
               b"9" * 400, b"9" * 5000, b"0.0000001", b"-0", b"2147483648", b"65536", b"1" + b"0" * 30, b"1_000",
               b"0x10", b"\xd9\xa3")
ODD_JSON: tuple[Any, ...] = (None, True, False, 0, -1, 1, 2, 2**31, 2**63, 2**64, 10**400, -(10**400), 1e308, -1e308,
                             0.5, float("nan"), float("inf"), float("-inf"), "", "x" * 10_000, "\x00", "\ud800", "NaN",
                             "12", [], {}, [None], {"": None}, [[[[[]]]]], DEEP, "../../etc/passwd", "/dev/zero",
                             "float32", "int8", "tflite", "onnx", "image", "audio", "sensor", "classification")
ODD_LINES = (b"", b"#", b",,,", b"nan,inf,-inf", b"1e999,1,1", b"9" * 5000 + b",1,1", b"{}", b"[]", b"null", b"\x00",
             b'{"ax": 1e400, "ay": 1, "az": 1}', b'{"ax": ' + b"9" * 400 + b', "ay": 1, "az": 1}',
             b'{"ax": "1", "ay": true, "az": null}', b'{"ax": 1}', b"[" * 50_000 + b"]" * 50_000,
             b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, b"\xef\xbb\xbfax,ay,az", b"\xff\xfe\x00", b"1,2",
             b"1,2,3,4", b"ax,ay,az", b"1.0,2.0,3.0", b'{"ax": [1, 2], "ay": {"x": 1}, "az": 1}',
             b'{"ax": 1, "ay": 2, "az": 3, "ax": 4}', b"\xed\xa0\x80,1,1")
ODD_MJPEG_HEADERS = (b"", b"Content-Type: text/plain", b"Content-Type: image/png", b"Content-Type:",
                     b"Content-Length: 0", b"Content-Length: 4294967296", b"Content-Length: -1",
                     b"Content-Length: " + b"9" * 400, b"X-Timestamp: 1.0", b"--frame", b"--frame--", b":",
                     b"Content-Type: multipart/x-mixed-replace; boundary=frame", b"\x00" * 16, b"a" * 5000)


def _json_slots(node: Any, depth: int = 0) -> Iterable[tuple[Any, Any]]:
    if depth > 40:
        return
    if isinstance(node, dict):
        for key in list(node):
            yield node, key
            yield from _json_slots(node[key], depth + 1)
    elif isinstance(node, list):
        for i in range(len(node)):
            yield node, i
            yield from _json_slots(node[i], depth + 1)


def _number_or(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return {"class_name": text, "config": {}}


def _write_zip(members: list[tuple[str, bytes]], compress: bool = False, comment: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as out:
        for name, content in members:
            info = zipfile.ZipInfo(name or "unnamed", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            out.writestr(info, content)
        if comment:
            out.comment = b"edgekit fuzz" * 5
    return buffer.getvalue()


def _rehash_manifest(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Make a bundle manifest's ``files`` list the members' real sizes and hashes."""
    try:
        index = [name for name, _ in members].index("manifest.json")
        manifest = json.loads(members[index][1])
        files = manifest["files"]
        for name, content in members:
            if name in files and isinstance(files[name], dict):
                files[name]["sha256"] = hashlib.sha256(content).hexdigest()
                files[name]["size"] = len(content)
    except (ValueError, KeyError, TypeError, RecursionError):
        return members
    members = list(members)
    members[index] = ("manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8",
                                                                                                     "surrogatepass"))
    return members


# ---------------------------------------------------------------------------
# targets


class Workspace:
    """Per-worker scratch folder and whatever a target loads once (a model, a key)."""

    def __init__(self, tmp: Path, production: bool = False) -> None:
        self.tmp = tmp
        self.production = production  # run steps as edgekit runs them, child processes included
        self.cache: dict[str, Any] = {}

    def write(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path


@dataclasses.dataclass(frozen=True)
class Step:
    """One loader call on the input.

    Attributes:
        name: short name in reports.
        run: returns a short description of the value; may raise `EdgekitError`.
        contained: where edgekit runs this native parsing in a child process, if it does.
            The fuzzing run calls the parser in the worker itself (fast); a crash there
            is replayed with ``Workspace.production`` set, which goes through edgekit's
            child process, and counts as contained only when that ends in a value or an
            `EdgekitError`.
    """

    name: str
    run: Callable[[bytes, Workspace], str]
    contained: str | None = None
    guided: bool = True  # worth coverage-guided fuzzing (False: a native parser and little Python)
    kind_of_value: Callable[[str], str] | None = None  # values that count as different outcomes (the pool)


@dataclasses.dataclass(frozen=True)
class Target:
    """One loader (or a few that read the same bytes), as a list of steps run on each input.

    Attributes:
        name: the target's name (also its seed and corpus folder).
        loaders: the entry points it exercises, for reports.
        steps: what runs on each input, in order; each step runs even when an earlier one
            refused the input.
        mutate: how to derive a new input from a pool input (structure-aware where it helps).
        needs: modules that must import (else the target is skipped, naming them).
        suffix: file suffix of reproducers.
        timeout_s: time one input may take before the worker is killed.
        setup: loads what every input needs, once per worker.
        hidden: a self-test target (not in ``all``).
    """

    name: str
    loaders: str
    steps: tuple[Step, ...]
    mutate: Callable[[Mutator, bytes], bytes]
    needs: tuple[str, ...] = ()
    suffix: str = ".bin"
    timeout_s: float = 20.0
    setup: Callable[[Workspace], None] | None = None
    hidden: bool = False


def _summary(value: Any) -> str:
    return (type(value).__name__ + " " + repr(value)[:60]).strip()


# bundle ------------------------------------------------------------------------------


def _bundle_setup(ws: Workspace) -> None:
    ws.cache["public_key"] = (SEEDS / "bundle" / "fuzz.pub").read_bytes()


def _raw_input(model: Any) -> Any:
    """A plausible raw input for the bundle's preprocessing (what `predict` is given)."""
    import numpy as np

    from edgekit.spec import AudioPreprocess, ImagePreprocess, SensorPreprocess

    spec = model.manifest.preprocess
    rng = np.random.default_rng(0)
    if isinstance(spec, ImagePreprocess):
        return rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
    if isinstance(spec, AudioPreprocess):
        return (rng.standard_normal(min(spec.clip_samples, 64_000)).astype(np.float32) * 0.1, spec.sample_rate)
    if isinstance(spec, SensorPreprocess):
        return rng.standard_normal((spec.window, len(spec.channels))).astype(np.float32)
    shape = tuple(1 if d < 0 else d for d in model.input.shape)
    if int(np.prod(shape, dtype=np.float64)) > 1 << 22:  # the caller's tensor, not edgekit's allocation
        raise _TooBig(shape)
    return np.zeros(shape, np.float32)


def _bundle_open(data: bytes, ws: Workspace) -> str:
    from edgekit.bundle import open_bundle

    bundle = open_bundle(ws.write("input.edgekit", data))
    return f"{len(bundle.manifest.variants)} variant(s)"


def _bundle_load_predict(data: bytes, ws: Workspace) -> str:
    """`edgekit.runtime.load` of every variant (at most four) and one `predict` each."""
    from edgekit.bundle import open_bundle
    from edgekit.errors import EdgekitError
    from edgekit.runtime import load

    path = ws.tmp / "input.edgekit"
    if not path.exists() or path.read_bytes() != data:
        path = ws.write("input.edgekit", data)
    names = open_bundle(path).manifest.variant_names[:4]
    done, first_error = [], None
    for name in names:
        try:
            model = load(path, variant=name)
            done.append(model.predict(_raw_input(model)).kind)
        except EdgekitError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return ",".join(done)


def _bundle_signed(data: bytes, ws: Workspace) -> str:
    """With a public key: the signature is checked before the manifest is parsed."""
    from edgekit.bundle import open_bundle

    if b"signature.json" not in data:
        return "unsigned (skipped)"
    return _summary(open_bundle(ws.write("input.edgekit", data), public_key=ws.cache["public_key"]).signed_by)


# tflite ------------------------------------------------------------------------------


def _zeros_for(details: list[dict[str, Any]]) -> list[Any]:
    import numpy as np

    arrays = []
    for d in details:
        shape = tuple(max(1, int(x)) for x in d["shape"])
        if int(np.prod(shape)) > 1 << 22:
            raise _TooBig(shape)
        arrays.append(np.zeros(shape, np.dtype(d["dtype"])))
    return arrays


class _TooBig(Exception):
    """An input tensor too large to feed (the target then stops; not a finding)."""


def _describe(kind: str) -> Callable[[bytes, Workspace], str]:
    def step(data: bytes, ws: Workspace) -> str:
        """``edgekit inspect FILE``'s describer: in the worker, or (production) in isolate's child."""
        from edgekit.inspection.isolate import describe_in_process, describe_isolated

        folder = ws.tmp / "model"  # a bare file, next to the ONNX seeds' external data
        folder.mkdir(exist_ok=True)
        path = folder / f"input.{kind}"
        path.write_bytes(data)
        if ws.production:
            info = describe_isolated(kind, path=path, timeout=PRODUCTION_TIMEOUT_S)
        else:
            info = describe_in_process(kind, path=path)
        return f"{len(info.inputs)} in, {len(info.outputs)} out, {sum(info.operators.values())} ops"

    return step


def _tflite_runtime(data: bytes, ws: Workspace) -> str:
    """What `load` does with a variant's bytes (probe, verifying loader), then one invocation."""
    from edgekit._native import native_stderr_captured
    from edgekit.runtime.backends import open_backend

    with native_stderr_captured(replay_on_error=False):
        backend = open_backend("tflite", data, probe=ws.production)
    try:
        inputs = _zeros_for(backend.inputs)
    except _TooBig as big:
        return f"loaded; input {big.args[0]} too big to run"
    outputs = backend.run(inputs)
    return f"ran: {[tuple(o.shape) for o in outputs]}"[:80]


# onnx --------------------------------------------------------------------------------


def _onnx_setup(ws: Workspace) -> None:
    (ws.tmp / "model").mkdir(exist_ok=True)
    (ws.tmp / "model" / "weights.bin").write_bytes(b"\0" * 64)


def _onnx_external(data: bytes, ws: Workspace) -> str:
    """The pure-Python walk, for a bundle's bytes (no folder) and a bare file's (a folder)."""
    from edgekit.errors import EdgekitError
    from edgekit.runtime.onnxdata import external_files, external_refs

    refs = external_refs(data)
    try:
        external_files(data, None, "ONNX model")
    except EdgekitError:
        if not refs:
            raise
    files = external_files(data, ws.tmp / "model", "ONNX model")
    return f"{len(refs)} external ref(s), {len(files)} file(s)"


def _onnx_runtime(data: bytes, ws: Workspace) -> str:
    from edgekit.runtime.backends import open_backend

    backend = open_backend("onnx", data, threads=1, folder=ws.tmp / "model", probe=ws.production)
    try:
        try:
            details = [{"shape": [d if isinstance(d, int) else 1 for d in i.shape],
                        "dtype": _ORT_TYPES.get(i.type, "float32")} for i in backend.session.get_inputs()]
        except UnicodeDecodeError:  # a type string that is not UTF-8; the backend itself never reads it
            return "loaded; input types unreadable"
        inputs = _zeros_for(details)
    except _TooBig as big:
        return f"loaded; input {big.args[0]} too big to run"
    outputs = backend.run(inputs)  # a graph that cannot run on zeros: InputError
    return f"ran: {[tuple(getattr(o, 'shape', ())) for o in outputs]}"[:80]


_ORT_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
              "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
              "tensor(float16)": "float16", "tensor(int16)": "int16"}


# keras and h5 ---------------------------------------------------------------------------


def _keras_config(suffix: str) -> Callable[[bytes, Workspace], str]:
    def step(data: bytes, ws: Workspace) -> str:
        """`read_keras_config`, the code scan, and the config-only description (no Keras)."""
        from edgekit.inspection.keras import describe_keras_config, find_code, read_keras_config

        path = ws.write("model" + suffix, data)
        config, metadata = read_keras_config(path)
        code = find_code(config)
        info = describe_keras_config(path, config, metadata, code, "fuzz")
        return f"{len(info.inputs)} in, {sum(info.operators.values())} layers, code={bool(code)}"

    return step


# wav ---------------------------------------------------------------------------------


def _wav_bytes(data: bytes, _ws: Workspace) -> str:
    from edgekit.features.audio import read_wav

    samples, rate = read_wav(data)
    return f"{samples.shape[0]} samples at {rate} Hz"


def _wav_source(data: bytes, ws: Workspace) -> str:
    """``wav:FILE``: the file read by path, then cut into chunks as `edgekit run` does."""
    from edgekit.runtime.sources import open_source

    source = open_source(f"wav:{ws.write('input.wav', data)}?chunk_ms=10")
    chunks = sum(1 for _ in zip(source, range(10_000), strict=False))
    return f"{chunks} chunk(s)"


def _wav_setup(ws: Workspace) -> None:
    if not _missing("ai_edge_litert"):
        from edgekit.runtime import load

        ws.cache["model"] = load(SEEDS / "bundle" / "audio.edgekit")


def _wav_stream(data: bytes, ws: Workspace) -> str:
    """``edgekit run audio.edgekit --source wav:FILE``: resampled from the header's rate, framed, run."""
    from edgekit.runtime.sources import open_source

    if "model" not in ws.cache:
        return "no TFLite interpreter (skipped)"
    return _stream(ws.cache["model"], open_source(f"wav:{ws.write('stream.wav', data)}?chunk_ms=250"))


# image -------------------------------------------------------------------------------


def _image_decode(data: bytes, _ws: Workspace) -> str:
    from edgekit.features.image import decode_image

    return f"decoded {decode_image(data).shape}"


def _image_preprocess(data: bytes, _ws: Workspace) -> str:
    """Decoded pixels through two preprocessing specs (resize, crop, gray, NCHW)."""
    from edgekit.features.image import decode_image, normalize, prepare
    from edgekit.spec import ImagePreprocess

    rgb = decode_image(data)
    shapes = []
    for spec in (ImagePreprocess(height=8, width=8),
                 ImagePreprocess(height=5, width=7, channels=1, color_order="gray", crop="center", crop_fraction=0.5,
                                 layout="nchw", resize="area")):
        shapes.append(normalize(prepare(rgb, spec), spec).shape)
    return f"preprocessed {shapes}"


# sensor lines ------------------------------------------------------------------------------


def _sensor_setup(ws: Workspace) -> None:
    from edgekit.runtime import load

    ws.cache["model"] = load(SEEDS / "bundle" / "sensor.edgekit")


def _stream(model: Any, source: Any) -> str:
    results = 0
    try:
        for _ in zip(model.stream(source), range(1000), strict=False):
            results += 1
    finally:
        malformed = source.counters.malformed
        source.close()
    return f"{results} result(s), {malformed} malformed line(s)"


def _sensor_csv(data: bytes, ws: Workspace) -> str:
    """``csv:FILE``: lines through the csv source into a sensor model's stream."""
    from edgekit.runtime.sources import open_source

    return _stream(ws.cache["model"], open_source(f"csv:{ws.write('input.csv', data)}"))


def _sensor_stdin(data: bytes, ws: Workspace) -> str:
    """``stdin``: the same bytes as standard input (which Python decodes strictly)."""
    from edgekit.runtime.sources import open_source

    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict")
    try:
        return _stream(ws.cache["model"], open_source("stdin"))
    finally:
        sys.stdin = saved


def _sensor_serial(data: bytes, ws: Workspace) -> str:
    """The serial source's line splitting and decoding, on the bytes as a device would send them."""
    from edgekit.runtime.sources import SerialSource

    source = SerialSource.__new__(SerialSource)
    source.closed = False
    source.serial = _FakeSerialModule
    source.port = "fuzz"
    source.device = _FakeSerialModule.Serial(data)
    from edgekit.runtime.sources import LinesSource

    LinesSource.__init__(source, source._lines(), "serial:fuzz")
    return _stream(ws.cache["model"], source)


class _FakeSerialModule:
    """Stands in for pyserial: a device that sends `data` in odd-sized reads, then goes away."""

    class SerialException(Exception):
        pass

    class Serial:
        def __init__(self, data: bytes) -> None:
            self.data = data
            self.at = 0

        def read(self, size: int) -> bytes:
            if self.at >= len(self.data):
                raise _StopFeeding
            chunk = self.data[self.at : self.at + min(size, 7 + self.at % 61)]
            self.at += len(chunk)
            return chunk

        def close(self) -> None:
            pass


class _StopFeeding(BaseException):
    """The fake device ran dry (ends the serial step; a BaseException so no handler eats it)."""


# mjpeg camera stream --------------------------------------------------------------------------

MJPEG_BOUNDARY = b"frame"
MJPEG_MAX_BYTES = 1 << 20  # repeated parts and long header lines must not grow the pool without end
MJPEG_STEP_S = 1.5  # one input: the stream served, read to its end (or this long), the source closed
MJPEG_SOURCE_OPTIONS = "timeout=0.5&max_reconnects=1"  # a stall is seen in 0.5 s; the source gives up by itself


def mjpeg_body(jpegs: Iterable[bytes], lengths: bool = True) -> bytes:
    """A multipart/x-mixed-replace body (as tests/support/mjpeg.py and IP cameras send it) of these JPEGs."""
    parts = []
    for jpeg in jpegs:
        head = b"--" + MJPEG_BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
        if lengths:
            head += b"Content-Length: %d\r\n" % len(jpeg)
        parts.append(head + b"\r\n" + jpeg + b"\r\n")
    return b"".join(parts)


def _mjpeg_setup(ws: Workspace) -> None:
    """A loopback HTTP server (a thread of the worker) that answers ``GET /stream/N`` with the
    current input as the body of a multipart MJPEG response (N names the input: a capture
    thread left over from an earlier input gets a 404, never the new bytes)."""
    import http.server
    import logging
    import threading

    logging.getLogger("edgekit.camera").setLevel(logging.ERROR)  # a reconnect warning per input
    ws.cache["mjpeg"] = {"token": 0, "body": b""}
    state = ws.cache["mjpeg"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            token, body = state["token"], state["body"]
            if self.path != f"/stream/{token}":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=" + MJPEG_BOUNDARY.decode())
            self.end_headers()
            try:
                self.wfile.write(body)  # then the connection closes: the end of the stream
            except OSError:  # the capture went away first
                pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="fuzz-mjpeg-server", daemon=True).start()
    ws.cache["mjpeg_port"] = httpd.server_address[1]

    # An exception in the capture thread would only be printed (and the stream would never
    # end): keep it, and the step raises it as the finding.
    errors: list[BaseException] = []
    ws.cache["capture_errors"] = errors
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is not None and args.thread.name == "edgekit-capture" and args.exc_value is not None:
            errors.append(args.exc_value)
        else:
            previous(args)

    threading.excepthook = hook


def _mjpeg_kind(detail: str) -> str:
    """Frames or none, one size or several, ended or stopped: which stream inputs differ for the pool."""
    match = re.match(r"(\d+) frame\(s\) captured, \d+ taken, (\d+) size", detail)
    frames, sizes = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    kind = "no frames" if not frames else "one frame" if frames == 1 else "frames"
    return kind + (" of several sizes" if sizes > 1 else "") + (", time limit" if "time limit" in detail else "")


def _mjpeg_stream(data: bytes, ws: Workspace) -> str:
    """``http://HOST/stream`` (edgekit.runtime.sources.camera through OpenCV's FFmpeg, in-process): the
    input served as one MJPEG response, its frames read until the stream ends, the source closed."""
    import threading

    from edgekit.runtime.sources import open_source

    state, errors = ws.cache["mjpeg"], ws.cache["capture_errors"]
    state["token"] += 1
    state["body"] = data
    errors.clear()
    started = time.monotonic()
    source = open_source(f"http://127.0.0.1:{ws.cache['mjpeg_port']}/stream/{state['token']}?{MJPEG_SOURCE_OPTIONS}")
    stop = threading.Event()

    def watch() -> None:
        # The server closed the connection (the source counts a reconnect, or gives up), the
        # capture thread died, or the time is up: close the source as `edgekit run` would.
        while not stop.wait(0.005):
            if (source.counters.reconnects or source._ended or not source._thread.is_alive()  # noqa: SLF001
                    or time.monotonic() - started > MJPEG_STEP_S):
                break
        source.close()

    watcher = threading.Thread(target=watch, name="fuzz-mjpeg-watch", daemon=True)
    watcher.start()
    shapes: set[tuple[int, ...]] = set()
    taken = 0
    try:
        for item in source:
            taken += 1
            shapes.add(tuple(item.payload.shape))
    finally:
        stop.set()
        watcher.join()
        source._thread.join()  # noqa: SLF001 - still alive after close(): the harness sees the hang
    if errors:
        raise errors[0]
    late = " (stopped at the step's time limit)" if time.monotonic() - started > MJPEG_STEP_S else ""
    return f"{source.frames_captured} frame(s) captured, {taken} taken, {len(shapes)} size(s) {sorted(shapes)}{late}"


# self-tests ---------------------------------------------------------------------------------


def _plant_exception(data: bytes, _ws: Workspace) -> str:
    if data and data[0] % 2:
        raise KeyError("planted")
    from edgekit.errors import InputError

    raise InputError("planted", expected="even first byte", found="odd")


def _plant_crash(data: bytes, _ws: Workspace) -> str:
    if data and data[0] % 2:
        os.abort()
    return "fine"


def _plant_hang(data: bytes, _ws: Workspace) -> str:
    if data and data[0] % 2:
        time.sleep(3600)
    return "fine"


def _plant_contained(data: bytes, ws: Workspace) -> str:
    """Crashes in the worker; in production it runs in a child process, as inspect does."""
    if ws.production:
        proc = subprocess.run([sys.executable, "-c", "import os; os.abort()"], check=False)
        from edgekit.errors import InputError

        raise InputError("planted", expected="no crash", found=f"a child that died ({proc.returncode})")
    return _plant_crash(data, ws)


ISOLATED = "edgekit inspect's child process (edgekit.inspection.isolate)"
PROBED = "the runtime's probe process (edgekit.runtime.backends.probe_model)"
PRODUCTION_TIMEOUT_S = 15.0  # edgekit's own child-process timeouts when replaying in production mode
H5_TIMEOUT_S = 3.0  # edgekit's HDF5 attribute reader (a child process) in the workers

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("bundle", "edgekit.bundle.open_bundle (zip, manifest JSON, schema, hashes; signature.json with a key), "
           "edgekit.runtime.load + Model.predict for every variant",
           (Step("open_bundle", _bundle_open), Step("load+predict", _bundle_load_predict, PROBED),
            Step("signed", _bundle_signed)),
           lambda m, d: m.zip(d, ("manifest.json", "signature.json"), rehash=True) if m.rng.random() < 0.8
           else m.bytes(d),
           needs=("ai_edge_litert", "onnxruntime", "cryptography"), suffix=".edgekit", setup=_bundle_setup),
    Target("tflite", "edgekit.inspection.tflite.describe_tflite (inspect), "
           "edgekit.runtime.backends.open_backend('tflite') (load) + one invocation",
           (Step("describe", _describe("tflite"), ISOLATED, guided=False),
            Step("runtime", _tflite_runtime, PROBED, guided=False)),
           lambda m, d: m.bytes(d), needs=("ai_edge_litert",), suffix=".tflite"),
    Target("onnx", "edgekit.runtime.onnxdata (external data walk), edgekit.inspection.onnx.describe_onnx, "
           "edgekit.runtime.backends.open_backend('onnx') + one run",
           (Step("external-data", _onnx_external), Step("describe", _describe("onnx"), ISOLATED, guided=False),
            Step("runtime", _onnx_runtime, PROBED, guided=False)),
           lambda m, d: m.bytes(d), needs=("onnx", "onnxruntime"), suffix=".onnx", setup=_onnx_setup),
    Target("keras", "edgekit.inspection.keras.read_keras_config (.keras zip), find_code, describe_keras_config",
           (Step("config", _keras_config(".keras")),),
           lambda m, d: m.zip(d, ("config.json", "metadata.json"), rehash=False) if m.rng.random() < 0.7
           else m.bytes(d), needs=("h5py",), suffix=".keras"),
    Target("h5", "edgekit.inspection.keras.read_keras_config (.h5 via h5py), find_code, describe_keras_config",
           (Step("config", _keras_config(".h5")),), lambda m, d: m.bytes(d), needs=("h5py",), suffix=".h5",
           timeout_s=20.0),  # above read_keras_config's own 10 s limit on its HDF5 child process
    Target("wav", "edgekit.features.audio.read_wav (bytes), the wav: source (path, chunks) into an audio "
           "bundle's Model.stream (resampling, features)",
           (Step("read_wav", _wav_bytes), Step("wav-source", _wav_source), Step("stream", _wav_stream)),
           lambda m, d: m.bytes(d), suffix=".wav", setup=_wav_setup),
    Target("image", "edgekit.features.image.decode_image (Pillow; OpenCV imdecode where Pillow is absent), prepare + normalize",
           (Step("decode", _image_decode), Step("preprocess", _image_preprocess)), lambda m, d: m.bytes(d),
           needs=("cv2",), suffix=".img"),
    Target("sensor", "edgekit.runtime.sources: csv:, stdin and serial: lines (_parse_row, LinesSource) into "
           "Model.stream of a sensor bundle",
           (Step("csv", _sensor_csv), Step("stdin", _sensor_stdin), Step("serial", _sensor_serial)),
           lambda m, d: m.lines(d) if m.rng.random() < 0.7 else m.bytes(d),
           needs=("ai_edge_litert",), suffix=".txt", setup=_sensor_setup),
    Target("mjpeg", "an http:// MJPEG camera stream: edgekit.runtime.sources.open_source -> "
           "edgekit.runtime.sources.camera.CameraSource (OpenCV's FFmpeg, in-process), frames read to the end, close",
           (Step("http-stream", _mjpeg_stream, guided=False, kind_of_value=_mjpeg_kind),),
           lambda m, d: m.mjpeg(d) if m.rng.random() < 0.75 else m.bytes(d),
           needs=("cv2",), suffix=".mjpeg", timeout_s=10.0, setup=_mjpeg_setup),
    Target("selftest-exception", "a planted KeyError on odd first bytes", (Step("plant", _plant_exception),),
           lambda m, d: m.bytes(d), hidden=True),
    Target("selftest-crash", "a planted os.abort() on odd first bytes", (Step("plant", _plant_crash),),
           lambda m, d: m.bytes(d), hidden=True),
    Target("selftest-contained", "a planted os.abort() that edgekit would run in a child process",
           (Step("plant", _plant_contained, "a child process"),), lambda m, d: m.bytes(d), hidden=True),
    Target("selftest-hang", "a planted endless sleep on odd first bytes", (Step("plant", _plant_hang),),
           lambda m, d: m.bytes(d), hidden=True, timeout_s=1.0),
)}
PUBLIC_TARGETS = [name for name, t in TARGETS.items() if not t.hidden]


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def missing_modules(target: Target) -> list[str]:
    return [m for m in target.needs if _missing(m)]


def seeds(target: Target, corpus: bool = True) -> list[bytes]:
    """The target's seed files, then (with `corpus`) its regression corpus without the
    expected failures (their fixes are pending; mutating them finds them again)."""
    if target.hidden:
        return [b"\x00seed", b"\x02\x04\x06", b"even"]
    folder = SEEDS / target.name
    found = [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.suffix not in (".pub", ".md")] \
        if folder.is_dir() else []
    if corpus:
        found += [path.read_bytes() for _, path, note in corpus_cases([target.name]) if note is None]
    return found


# ---------------------------------------------------------------------------
# the worker process


def _classify(step: str, call: Callable[[], str]) -> dict[str, Any]:
    from edgekit.errors import EdgekitError

    try:
        return {"step": step, "kind": "ok", "detail": call()[:200]}
    except EdgekitError as exc:
        return {"step": step, "kind": "error", "type": type(exc).__name__, "message": str(exc)[:300]}
    except _TooBig as exc:
        return {"step": step, "kind": "ok", "detail": f"too big {exc.args[0]}"}
    except _StopFeeding:
        return {"step": step, "kind": "ok", "detail": "device ran dry"}
    except (Exception, RecursionError) as exc:  # the finding: anything else escaped the loader
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/edgekit/" in f.filename] or frames
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
        return {"step": step, "kind": "bug", "type": type(exc).__name__, "message": str(exc)[:300], "where": where,
                "traceback": "".join(traceback.format_exception(exc))[-3000:]}


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def worker_main(name: str) -> int:
    """Serve one target: a 4-byte length and the input on stdin, JSON lines on fd 1."""
    import resource

    target = TARGETS[name]
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = WORKER_MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(hard, WORKER_MEMORY_BYTES)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # libraries that print must not corrupt the replies
    sys.stdout = sys.stderr
    production = os.environ.get("EDGEKIT_FUZZ_PRODUCTION") == "1"
    ws = Workspace(Path(os.environ.get("EDGEKIT_FUZZ_TMP") or tempfile.mkdtemp(prefix="edgekit-fuzz-")), production)
    faulthandler.enable(file=(ws.tmp / CRASH_STACK).open("w"))  # where a crash happened, for the report
    if not target.hidden:
        from edgekit.inspection import keras as keras_files
        from edgekit.runtime.backends import probe

        if hasattr(keras_files, "H5_TIMEOUT_S"):  # its HDF5 reader's child process: a hang costs 3 s, not 10
            keras_files.H5_TIMEOUT_S = min(keras_files.H5_TIMEOUT_S, H5_TIMEOUT_S)
        if production:
            probe.PROBE_TIMEOUT_S = PRODUCTION_TIMEOUT_S
        else:  # the worker is the child process here: parse in it, and see the crashes
            probe.probe_model = lambda *_args, **_kwargs: None
    if target.setup is not None:
        target.setup(ws)
    reply.write(json.dumps({"ready": True}) + "\n")
    baseline = _peak_rss()
    stdin = sys.stdin.buffer
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            return 0
        (size,) = struct.unpack("<I", head)
        data = stdin.read(size)
        outcomes = []
        for step in target.steps:
            reply.write(json.dumps({"start": step.name}) + "\n")
            started = time.perf_counter()
            outcomes.append(_classify(step.name, functools.partial(step.run, data, ws)))
            outcomes[-1]["seconds"] = round(time.perf_counter() - started, 4)
            if step.kind_of_value is not None and outcomes[-1]["kind"] == "ok":
                outcomes[-1]["where"] = step.kind_of_value(outcomes[-1]["detail"])
            grown = _peak_rss() - baseline
            if grown > MEMORY_FINDING_BYTES and outcomes[-1]["kind"] in ("ok", "error"):
                # The peak only grows: the parent restarts this worker to measure the next input.
                outcomes[-1] = {"step": step.name, "kind": "memory", "type": "peak over 1 GiB",
                                "message": f"the process's peak memory grew by {grown >> 20} MiB on a "
                                f"{len(data)}-byte input ({outcomes[-1].get('type', 'a value')})",
                                "seconds": outcomes[-1]["seconds"]}
                break
        reply.write(json.dumps({"done": outcomes}) + "\n")


class Worker:
    """A worker process for one target, respawned after it dies."""

    def __init__(self, target: Target, production: bool = False) -> None:
        self.target = target
        self.production = production
        self.proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self.spawns = 0
        self.tmp: str | None = None

    def start(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix=f"edgekit-fuzz-{self.target.name}-")
        env = dict(os.environ, EDGEKIT_FUZZ_TMP=self.tmp, EDGEKIT_FUZZ_PRODUCTION="1" if self.production else "0",
                   XDG_CACHE_HOME=self.tmp, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1", PYTHONHASHSEED="0",
                   OPENCV_LOG_LEVEL="OFF", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", self.target.name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, cwd=str(REPO))
        self._buffer = b""
        self.spawns += 1
        line = self._line(time.monotonic() + 120.0)
        if line is None or not line.get("ready"):
            code = self.stop()
            raise RuntimeError(f"fuzz worker for {self.target.name} did not start (exit {code})")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        return code

    def _line(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line, or None at EOF or when the deadline passes (self.proc left alive)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return {"timeout": True}
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, data: bytes, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """Outcomes of every step on `data`; a crash or hang ends the list with that outcome."""
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + (timeout_s or self.target.timeout_s)
        step = "?"
        while True:
            line = self._line(deadline)
            if line is None:  # the worker died
                stack = ""
                if self.tmp is not None and (Path(self.tmp) / CRASH_STACK).is_file():
                    stack = (Path(self.tmp) / CRASH_STACK).read_text(errors="replace")
                code = self.stop()
                return [{"step": step, "kind": "crash", "type": _signal_name(code), "message": f"exit status {code}",
                         "where": _crash_where(stack), "traceback": stack[-3000:]}]
            if line.get("timeout"):
                self.stop()
                return [{"step": step, "kind": "hang", "type": "timeout",
                         "message": f"no answer within {timeout_s or self.target.timeout_s:g} s"}]
            if "start" in line:
                step = line["start"]
                deadline = time.monotonic() + (timeout_s or self.target.timeout_s)
            elif "done" in line:
                if any(o["kind"] == "memory" for o in line["done"]):
                    self.stop()  # a fresh worker: its peak memory starts low again
                return line["done"]


def _crash_where(stack: str) -> str:
    """The innermost edgekit frame of a faulthandler dump (``file.py:line``)."""
    for line in stack.splitlines():
        match = re.search(r'File "([^"]*/edgekit/[^"]*)", line (\d+)', line)
        if match:
            return f"{Path(match.group(1)).name}:{match.group(2)}"
    return ""


def _signal_name(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


# ---------------------------------------------------------------------------
# the fuzzing loop

FAILURE_KINDS = ("bug", "crash", "hang", "memory")


def _signature(outcomes: list[dict[str, Any]]) -> tuple:
    def norm(o: dict[str, Any]) -> tuple:
        message = re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"|/\S+", "S", o.get("message", "")))[:80]
        return o["step"], o["kind"], o.get("type", ""), message if o["kind"] == "error" else o.get("where", "")

    return tuple(norm(o) for o in outcomes)


@dataclasses.dataclass
class Finding:
    """One kind of failure (kind, step, type, place), with its smallest input so far.

    `known` names the pending fix when the failure matches an expected failure of the
    regression corpus; `contained` says how edgekit's child process answered a crash.
    """

    kind: str  # bug, crash, hang
    step: str
    type: str
    message: str
    where: str
    count: int
    reproducer: Path | None
    data: bytes = dataclasses.field(repr=False, default=b"")
    traceback: str = ""
    known: str | None = None
    contained: str | None = None

    def line(self) -> str:
        at = f" at {self.where}" if self.where else ""
        saved = f"; reproducer {self.reproducer}" if self.reproducer else ""
        label = "CONTAINED " + self.kind if self.contained else ("KNOWN " + self.kind if self.known else
                                                                   self.kind.upper())
        text = f"{label} in step {self.step}: {self.type}{at}: {self.message[:160]} ({self.count} input(s){saved})"
        if self.contained:
            text += f"\n      edgekit's child process turned it into: {self.contained[:200]}"
        if self.known:
            text += f"\n      pending fix: {self.known[:200]}"
        return text


@dataclasses.dataclass
class Report:
    """What one fuzzing run of one target saw."""

    target: str
    seconds: float = 0.0
    inputs: int = 0
    seeds: int = 0
    worker_starts: int = 0
    outcomes: set = dataclasses.field(default_factory=set)
    steps: dict[str, collections.Counter] = dataclasses.field(default_factory=dict)
    findings: dict[tuple, Finding] = dataclasses.field(default_factory=dict)
    slow: int = 0
    slowest: tuple[float, str, Path | None] = (0.0, "", None)  # seconds, step, saved input

    @property
    def failures(self) -> list[Finding]:
        """What must be fixed: not contained by edgekit, not a known failure with a pending fix."""
        return [f for f in self.findings.values() if not f.contained and not f.known]

    @property
    def known(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.known and not f.contained]

    @property
    def contained(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.contained]

    def render(self) -> str:
        lines = [f"{self.target}: {self.inputs} inputs in {self.seconds:.1f} s ({self.seeds} seeds), "
                 f"{len(self.outcomes)} distinct outcomes; {len(self.failures)} failure(s), "
                 f"{len(self.known)} known, {len(self.contained)} contained; worker started {self.worker_starts} "
                 "time(s)" + (f"; {self.slow} slow input(s) retried" if self.slow else "")]
        if self.slowest[0] > 1.0:
            seconds, step, path = self.slowest
            lines.append(f"  slowest input: {seconds:.1f} s in step {step}" + (f" ({path})" if path else ""))
        for step, counter in self.steps.items():
            parts = ", ".join(f"{k} {v}" for k, v in counter.most_common())
            lines.append(f"  {step}: {parts}")
        lines += ["  " + f.line() for f in self.findings.values()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "seconds": round(self.seconds, 1), "inputs": self.inputs, "seeds": self.seeds,
                "slowest_input_s": self.slowest[0],
                "distinct_outcomes": len(self.outcomes), "worker_starts": self.worker_starts, "slow": self.slow,
                "steps": {k: dict(v) for k, v in self.steps.items()},
                "findings": [{"kind": f.kind, "step": f.step, "type": f.type, "where": f.where, "message": f.message,
                              "count": f.count, "reproducer": str(f.reproducer) if f.reproducer else None,
                              "known": f.known, "contained": f.contained} for f in self.findings.values()]}


def save_reproducer(folder: Path, target: str, kind: str, data: bytes, suffix: str) -> Path:
    out = folder / target
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}{suffix}"
    path.write_bytes(data)
    return path


def known_failures(name: str) -> list[dict[str, Any]]:
    """The expected failures of a target's regression corpus that say how to match them."""
    notes_file = CORPUS / name / EXPECTED_FAILURES
    if not notes_file.is_file():
        return []
    return [note for note in json.loads(notes_file.read_text()).values() if isinstance(note.get("match"), dict)]


def _known(outcome: dict[str, Any], known: list[dict[str, Any]]) -> str | None:
    for note in known:
        match = note["match"]
        where_file = outcome.get("where", "").split(":")[0]
        if (match.get("kind", outcome["kind"]) == outcome["kind"] and match.get("type") == outcome.get("type")
                and match.get("in", where_file) == where_file):
            return str(note.get("fix") or note.get("why"))
    return None


class _Fuzzer:
    """The state of one run: the pool, the workers, the report."""

    def __init__(self, name: str, seed: int, save_dir: Path | None) -> None:
        self.target = TARGETS[name]
        self.rng = random.Random(f"{seed}:{name}")
        self.pool = seeds(self.target)
        if not self.pool:
            raise FileNotFoundError(f"no seeds for fuzz target {name} under {SEEDS / name}")
        self.report = Report(name, seeds=len(seeds(self.target, corpus=False)))
        self.mutator = Mutator(self.rng, self.pool)
        self.worker = Worker(self.target)
        self.production: Worker | None = None  # started when a crash needs confirming
        self.save_dir = save_dir
        self.known = known_failures(name)
        self._data = b""  # the input being recorded

    def close(self) -> None:
        self.worker.stop()
        if self.production is not None:
            self.production.stop()
        self.report.worker_starts = self.worker.spawns

    def one(self, data: bytes) -> None:
        outcomes = self.worker.run(data)
        if outcomes[-1]["kind"] == "hang" and not _known(outcomes[-1], self.known):
            # a busy machine, or a real hang? once more, with time
            self.report.slow += 1
            outcomes = self.worker.run(data, timeout_s=3 * self.target.timeout_s)
        if self.record(outcomes, data) and len(self.pool) < MAX_POOL:
            self.pool.append(data)

    def _contained(self, outcome: dict[str, Any]) -> str | None:
        """How edgekit's own child process answers the input: None when it failed too."""
        step = next((s for s in self.target.steps if s.name == outcome["step"]), None)
        if step is None or step.contained is None or outcome["kind"] not in ("crash", "hang"):
            return None
        if self.production is None:
            self.production = Worker(self.target, production=True)
        replayed = self.production.run(self._data, timeout_s=4 * PRODUCTION_TIMEOUT_S)
        answer = next((o for o in replayed if o["step"] == step.name), replayed[-1])
        if answer["kind"] in ("ok", "error"):
            return f"{answer.get('type', 'a value')}: {answer.get('message', answer.get('detail', ''))}"
        return None

    def record(self, outcomes: list[dict[str, Any]], data: bytes) -> bool:
        """Count one input's outcomes; True when it was an outcome not seen before."""
        report = self.report
        report.inputs += 1
        slowest = max(outcomes, key=lambda o: o.get("seconds", 0.0))
        if slowest.get("seconds", 0.0) > report.slowest[0]:
            path = None
            if self.save_dir is not None and slowest["seconds"] > 1.0:
                path = self.save_dir / self.target.name / f"slowest{self.target.suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            report.slowest = (slowest["seconds"], slowest["step"], path)
        signature = _signature(outcomes)
        new = signature not in report.outcomes
        report.outcomes.add(signature)
        for o in outcomes:
            counter = report.steps.setdefault(o["step"], collections.Counter())
            counter["ok" if o["kind"] == "ok" else o["kind"] + ":" + o.get("type", "")] += 1
            if o["kind"] not in FAILURE_KINDS:
                continue
            key = (o["kind"], o["step"], o.get("type", ""), o.get("where", ""))
            finding = report.findings.get(key)
            if finding is not None:
                finding.count += 1
                if len(data) < len(finding.data):  # keep the smallest reproducer
                    finding.data = data
                    if finding.reproducer is not None:
                        finding.reproducer.unlink(missing_ok=True)
                        finding.reproducer = self._save(o["kind"], data)
                continue
            self._data = data
            finding = Finding(o["kind"], o["step"], o.get("type", ""), o.get("message", ""), o.get("where", ""), 1,
                              None, data, o.get("traceback", ""), known=_known(o, self.known),
                              contained=self._contained(o))
            finding.reproducer = self._save(o["kind"], data)
            report.findings[key] = finding
        return new

    def _save(self, kind: str, data: bytes) -> Path | None:
        return save_reproducer(self.save_dir, self.target.name, kind, data, self.target.suffix) if self.save_dir \
            else None


def fuzz(name: str, seconds: float, seed: int = 0, save_dir: Path | None = None, max_inputs: int | None = None,
         progress: Callable[[Report], None] | None = None) -> Report:
    """Run the seeds, then mutate them for `seconds` (or `max_inputs`); the sequence of
    inputs is fixed by `seed`, how far it gets depends on the machine.

    A crash or hang in a step that edgekit runs in a child process is replayed through
    that child process (`Step.contained`). Failures are saved under ``save_dir/TARGET/``.
    """
    fuzzer = _Fuzzer(name, seed, save_dir)
    queue = seeds(fuzzer.target, corpus=False)  # the seeds first, as they are
    fuzzer.worker.start()  # the clock runs from the first input, not from the imports
    started = last_progress = time.monotonic()
    try:
        while time.monotonic() - started < seconds and (max_inputs is None or fuzzer.report.inputs < max_inputs):
            data = queue.pop(0) if queue else fuzzer.target.mutate(fuzzer.mutator, fuzzer.rng.choice(fuzzer.pool))
            fuzzer.one(data)
            if progress is not None and time.monotonic() - last_progress > 10:
                last_progress = time.monotonic()
                progress(fuzzer.report)
    finally:
        fuzzer.report.seconds = time.monotonic() - started
        fuzzer.close()
    return fuzzer.report


# ---------------------------------------------------------------------------
# the regression corpus


def corpus_cases(names: Iterable[str] | None = None) -> list[tuple[str, Path, str | None]]:
    """(target, file, expected-failure note or None) for every file of the regression corpus."""
    cases = []
    for name in names or PUBLIC_TARGETS:
        folder = CORPUS / name
        if not folder.is_dir():
            continue
        notes_file = folder / EXPECTED_FAILURES
        notes = json.loads(notes_file.read_text()) if notes_file.is_file() else {}
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name != EXPECTED_FAILURES and not path.name.endswith(".md"):
                cases.append((name, path, notes.get(path.name)))
    return cases


def replay(name: str, files: Sequence[Path], production: bool = True) -> dict[Path, list[dict[str, Any]]]:
    """Outcomes of each file, in one worker (respawned after a crash); by default as edgekit
    runs the steps, through its child processes (`Step.contained`)."""
    worker = Worker(TARGETS[name], production=production)
    try:
        return {path: worker.run(path.read_bytes()) for path in files}
    finally:
        worker.stop()


def minimize(name: str, data: bytes, seconds: float = 60.0) -> bytes:
    """A smaller input that still fails in every way `data` does (kind, step, type, place),
    by deleting chunks of halving sizes while that holds."""
    worker = Worker(TARGETS[name])

    def key(outcomes: list[dict[str, Any]]) -> set:
        return {(o["kind"], o["step"], o.get("type", ""), o.get("where", "")) for o in outcomes
                if o["kind"] in FAILURE_KINDS}

    wanted = key(worker.run(data))
    if not wanted:
        worker.stop()
        return data
    deadline = time.monotonic() + seconds
    chunk = max(1, len(data) // 2)
    try:
        while chunk >= 1 and time.monotonic() < deadline:
            at, shrunk = 0, False
            while at < len(data) and time.monotonic() < deadline:
                candidate = data[:at] + data[at + chunk:]
                if candidate and wanted <= key(worker.run(candidate)):
                    data, shrunk = candidate, True
                else:
                    at += chunk
            if not shrunk:
                chunk //= 2
    finally:
        worker.stop()
    return data


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(REPO))
        sys.exit(worker_main(sys.argv[2]))
    print("usage: python tests/support/fuzzing.py --worker TARGET (the fuzzing CLI is tools/fuzz.py)", file=sys.stderr)
    sys.exit(2)
