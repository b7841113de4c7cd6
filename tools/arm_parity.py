"""edgekit on arm64 (and 32-bit armv7) under QEMU user-mode emulation, compared with x86.

Usage: .venv/bin/python tools/arm_parity.py [--arch arm64|armv7] [--rebuild]   (make test-arm64 / test-armv7)

arm64: a Debian bookworm arm64 tree (what Raspberry Pi OS 64-bit is built from: Python
3.11, glibc 2.36) made with `mmdebstrap --variant=extract`, the static `qemu-aarch64` of
Debian 13's qemu-user (Debian 12's 7.2 segfaults in LiteRT and onnxruntime), edgekit's
wheel installed there with its [litert] and [onnx] extras from the registry (resolved for
manylinux aarch64, CPython 3.11). Every command runs under `proot -q qemu-aarch64`, so
that the processes edgekit starts (the model probe, bench workers) are emulated too.

armv7: a Debian armhf tree with Debian's own python3-numpy, python3-onnxruntime,
python3-pil (PyPI has no armv7l wheels of numpy, onnxruntime or ai-edge-litert), the
edgekit wheel without dependencies, run under `qemu-arm`; only the ONNX checks apply.

The bundles and inputs are made once on x86 (TensorFlow): a small image classifier
(tflite-fp32/int8, onnx-fp32/int8), a keyword-spotting-shaped audio bundle, an IMU-style
sensor bundle, a signed copy and a tampered one. The same commands run on both sides and
the outputs are compared (tests/support/parity.py): labels identical, integer outputs
within one quantization step, float outputs within 1e-5 relative. Prints the table and
the total time; exit 1 on a mismatch.

Everything expensive is cached under out/arm64/ (out/armv7/): the tree, QEMU, the
installed packages (redone when the wheel's requirements change; edgekit itself when its
files change), the bundles. `--rebuild` starts over.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIRROR = "http://deb.debian.org/debian"
QEMU_SUITE = "trixie"  # qemu-user 10.0; bookworm's 7.2 crashes in LiteRT and onnxruntime
# The inputs and tools folders are bound into the tree at their own paths, and proot starts in
# the inputs folder: proot 5.3 does not translate the path of faccessat2 (what os.access calls
# under QEMU 10), so os.access looks at the host's path, relative to the host's working
# directory, and Click's default readable check would refuse every other path.


GUEST_VENV = "/opt/edgekit"  # armv7: the venv (with Debian's site-packages) edgekit is installed into


@dataclass(frozen=True)
class Arch:
    name: str
    deb_arch: str
    suite: str
    python: str  # the suite's python3 version
    qemu: str
    packages: tuple[str, ...]  # apt packages of the tree
    pip_platforms: tuple[str, ...]  # wheel platform tags pip may take ("" = none: Debian packages only)
    extras: str
    backends: tuple[str, ...]
    guest_python: str = "/usr/bin/python3"


def _manylinux(machine: str, glibc_minor: int) -> tuple[str, ...]:
    return ("manylinux2014_" + machine, *(f"manylinux_2_{m}_{machine}" for m in range(17, glibc_minor + 1)))


# What matters of Raspberry Pi OS for edgekit: its python3, libstdc++ (LiteRT, onnxruntime),
# libgomp/libatomic (onnxruntime on 32-bit), a shell and coreutils.
BASE = ("python3", "libstdc++6", "libgomp1", "libatomic1", "dash", "coreutils")
ARCHES = {
    "arm64": Arch("arm64", "arm64", "bookworm", "3.11", "qemu-aarch64", BASE, _manylinux("aarch64", 36),
                  "litert,onnx", ("litert", "onnxruntime")),
    # 32-bit Raspberry Pi OS: bookworm has no python3-onnxruntime; trixie (Python 3.13) has it for armhf.
    # It is installed as a user there would: `apt install` of these, a venv with the system's
    # site-packages, `pip install --no-index "edgekit-ml[onnx]"` (nothing downloaded: every
    # requirement of the extra must come from Debian).
    "armv7": Arch("armv7", "armhf", "trixie", "3.13", "qemu-arm",
                  (*BASE, "python3-venv", "python3-pip", "python3-numpy", "python3-onnxruntime", "python3-onnx",
                   "python3-pil", "python3-yaml", "python3-click", "python3-cryptography", "python3-serial"),
                  (), "onnx", ("onnxruntime",), guest_python=f"{GUEST_VENV}/bin/python"),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sh(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, **kwargs)


# -- the emulated machine -------------------------------------------------------------------------


def qemu_binary(cache: Path, name: str) -> Path:
    """The static QEMU user emulator from Debian trixie's qemu-user package (extracted, not installed)."""
    folder = cache / "qemu-user"
    binary = folder / "usr" / "bin" / name
    if binary.exists():
        return binary
    log(f"fetching qemu-user from Debian {QEMU_SUITE}")
    with urllib.request.urlopen(f"{MIRROR}/dists/{QEMU_SUITE}/main/binary-amd64/Packages.xz", timeout=120) as r:
        index = lzma.decompress(r.read()).decode()
    stanza = next(s for s in index.split("\n\n") if s.startswith("Package: qemu-user\n"))
    fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
    deb = cache / Path(fields["Filename"]).name
    with urllib.request.urlopen(f"{MIRROR}/{fields['Filename']}", timeout=600) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != fields["SHA256"]:
        raise SystemExit(f"qemu-user download does not match Debian's index (SHA256 {fields['SHA256']})")
    deb.write_bytes(data)
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sh(["dpkg-deb", "-x", str(deb), str(tmp)])
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    deb.unlink()
    return binary


def debian_tree(cache: Path, arch: Arch) -> Path:
    tree = cache / "tree"
    stamp = cache / "tree.packages"
    wanted = f"{arch.suite} {arch.deb_arch} {' '.join(arch.packages)}"
    if tree.exists() and stamp.exists() and stamp.read_text() == wanted:
        return tree
    for program in ("mmdebstrap", "proot"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is not installed; run: apt-get install mmdebstrap proot")
    if os.geteuid() != 0:
        raise SystemExit(f"making the {arch.deb_arch} tree needs root (mmdebstrap --mode=root); run as root once, "
                         "later runs reuse it")
    log(f"building a Debian {arch.suite} {arch.deb_arch} tree (mmdebstrap, extract variant)")
    tmp = cache / "tree.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    sh(["mmdebstrap", "--quiet", "--mode=root", "--variant=extract", f"--architectures={arch.deb_arch}",
        f"--include={','.join(arch.packages)}", arch.suite, str(tmp), MIRROR])
    _unpacked_fixups(tmp)
    tmp.rename(tree)
    stamp.write_text(wanted)
    (cache / "site.stamp").unlink(missing_ok=True)
    return tree


def _unpacked_fixups(tree: Path) -> None:
    """What the extract variant leaves undone that Python needs: the merged-/usr links
    (trixie's packages ship only /usr/lib/ld-linux-*.so.3), the BLAS/LAPACK links that
    update-alternatives makes for Debian's numpy, and the CA bundle that ca-certificates'
    maintainer script makes (Debian's pip loads it even with --no-index)."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.exists() and not (tree / "etc/ssl/certs/ca-certificates.crt").exists():
        (tree / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy(bundle, tree / "etc/ssl/certs/ca-certificates.crt")
    for name in ("bin", "sbin", "lib"):
        if not (tree / name).exists() and not (tree / name).is_symlink():
            (tree / name).symlink_to(f"usr/{name}")
    for lib in tree.glob("usr/lib/*-linux-gnu*/*/lib*.so.3"):
        if lib.parent.name in ("blas", "lapack") and not (lib.parent.parent / lib.name).exists():
            (lib.parent.parent / lib.name).symlink_to(f"{lib.parent.name}/{lib.name}")


def _deny_untranslated_syscalls() -> None:
    """Run in the child before exec (subprocess preexec_fn): statx and faccessat2 fail with
    ENOSYS, so QEMU and glibc fall back to fstatat and faccessat, which proot 5.1 (Debian's)
    translates; it does not translate the two newer calls, and their paths would be looked
    up on the host (trixie's 32-bit glibc stats through statx: nothing would be found)."""
    import ctypes
    import errno
    import struct

    arch_x86_64, statx, faccessat2 = 0xC000003E, 332, 439
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    program = [(ld_abs, 0, 0, 4), (jeq, 0, 3, arch_x86_64), (ld_abs, 0, 0, 0), (jeq, 2, 0, statx),
               (jeq, 1, 0, faccessat2), (ret, 0, 0, 0x7FFF0000), (ret, 0, 0, 0x00050000 | errno.ENOSYS)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program), ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0):  # NO_NEW_PRIVS, SECCOMP filter
        raise OSError(ctypes.get_errno(), "could not install the seccomp filter for proot")


def build_wheel(cache: Path) -> Path:
    out = cache / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    sh([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
        str(REPO)], stdout=subprocess.DEVNULL)
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def _wheel_digests(wheel: Path) -> tuple[str, str]:
    """(sha256 of the wheel's requirements, sha256 of all its files' contents)."""
    with zipfile.ZipFile(wheel) as z:
        names = sorted(z.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = "\n".join(sorted(line for line in z.read(meta).decode().splitlines()
                                    if line.startswith(("Requires-Dist:", "Name:"))))
        files = hashlib.sha256()
        for n in names:
            files.update(n.encode() + b"\0" + z.read(n))
    return hashlib.sha256(requires.encode()).hexdigest(), files.hexdigest()


def install(cache: Path, guest: Side, arch: Arch) -> str:
    """edgekit's wheel in the tree, redone when its requirements change (edgekit alone when
    only its files do). arm64: with its extras from the registry, resolved on x86 for
    manylinux aarch64 and installed with --target. armv7: in the guest, into a venv with
    Debian's site-packages, `pip install --no-index WHEEL[onnx]`. Returns the versions."""
    wheel = build_wheel(cache)
    requires, files = _wheel_digests(wheel)
    stamp = cache / "site.stamp"
    state = json.loads(stamp.read_text()) if stamp.exists() else {}
    fresh = state.get("requires") != requires
    if not fresh and state.get("files") == files and state.get("installed"):
        return state["installed"]
    if arch.pip_platforms:
        site = guest.tree / "usr" / "local" / "lib" / f"python{arch.python}" / "dist-packages"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(site),
               "--python-version", arch.python, "--implementation", "cp", "--only-binary=:all:"]
        for platform in arch.pip_platforms:
            pip += ["--platform", platform]
        if fresh:
            log(f"installing {wheel.name}[{arch.extras}] into the tree for {arch.name} (pip --target, on x86)")
            shutil.rmtree(site, ignore_errors=True)
            site.mkdir(parents=True)
            sh([*pip, f"{wheel}[{arch.extras}]"])
        else:
            log(f"updating edgekit in the tree from {wheel.name}")
            for old in site.glob("edgekit*"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            sh([*pip, "--no-deps", "--upgrade", "--platform", "any", str(wheel)])
    else:
        if fresh:
            log(f"making {GUEST_VENV} in the {arch.name} tree (python3 -m venv --system-site-packages, emulated)")
            shutil.rmtree(guest.tree / GUEST_VENV.lstrip("/"), ignore_errors=True)
            guest.checked(["/usr/bin/python3", "-m", "venv", "--without-pip", "--system-site-packages", GUEST_VENV])
        log(f"pip install --no-index {wheel.name}[{arch.extras}] in the {arch.name} tree (emulated)")
        guest.checked([f"{GUEST_VENV}/bin/python", "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
                       "--no-warn-script-location", *([] if fresh else ["--no-deps", "--force-reinstall"]),
                       f"{wheel}[{arch.extras}]"], binds=[wheel.parent])
    probe = guest.checked([arch.guest_python, "-c", "import importlib.metadata as m, platform, sys\n"
                           "def v(name):\n"
                           "    try: return m.version(name)\n"
                           "    except m.PackageNotFoundError: return None\n"
                           "print(f'{platform.machine()} Python {sys.version.split()[0]}', *(f'{n} {v(n)}' for n in "
                           "('edgekit-ml', 'numpy', 'ai-edge-litert', 'onnxruntime', 'pillow') if v(n)), sep=', ')"])
    state = {"requires": requires, "files": files, "installed": probe.stdout.strip()}
    stamp.write_text(json.dumps(state))
    return state["installed"]


class Side:
    """Runs Python (edgekit's CLI or the probe) on one side: x86 natively, or in the tree
    under proot with QEMU (host folders bound at their own paths)."""

    def __init__(self, name: str, inputs: Path | None, *, tree: Path | None = None, qemu: Path | None = None,
                 python: str = "/usr/bin/python3") -> None:
        self.name, self.inputs, self.tree, self.qemu, self.guest_python = name, inputs, tree, qemu, python

    def run(self, argv: list[str], binds: list[Path] = (), timeout: float = 1800) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        cwd = self.inputs or REPO
        if self.inputs is not None:  # a fresh probe cache per run: every model is probed in a child once
            env["XDG_CACHE_HOME"] = str(self.inputs / ".cache")
        if self.tree is None:
            env["PYTHONPATH"] = str(REPO)
            return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        folders = [p for p in (self.inputs, REPO / "tools", *binds) if p is not None]
        argv = ["proot", "-q", str(self.qemu), "-r", str(self.tree), "-b", "/proc", "-b", "/dev", "-b", "/sys",
                *(x for p in folders for x in ("-b", str(p))), "-w", str(cwd), *argv]
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                              preexec_fn=_deny_untranslated_syscalls)

    def checked(self, argv: list[str], binds: list[Path] = ()) -> subprocess.CompletedProcess:
        proc = self.run(argv, binds)
        if proc.returncode:
            raise SystemExit(f"{' '.join(argv)} failed on {self.name} (exit {proc.returncode}):\n"
                             f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        return proc

    def python(self, args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
        return self.run([sys.executable if self.tree is None else self.guest_python, *args], timeout=timeout)

    def edgekit(self, *args: str) -> subprocess.CompletedProcess:
        return self.python(["-m", "edgekit", *args])


# -- the inputs, made once on x86 -----------------------------------------------------------------

INPUTS_VERSION = "4"


def make_inputs(folder: Path) -> Path:
    """Bundles, a key pair, a signed and a tampered bundle, images, a WAV, a CSV, an eval set."""
    stamp = folder / "READY"
    if stamp.exists() and stamp.read_text() == INPUTS_VERSION:
        return folder
    log("making the bundles and inputs on x86 (TensorFlow, about a minute)")
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    sh([sys.executable, str(Path(__file__).resolve()), "--make-inputs-here", str(tmp)], env=env)
    tmp.rename(folder)
    stamp.write_text(INPUTS_VERSION)
    return folder


def _make_inputs_here(root: Path) -> None:
    import wave

    import keras
    import numpy as np
    from PIL import Image

    from edgekit.convert.run import ConvertConfig, convert
    from edgekit.datasets.shapes import generate
    from edgekit.features.image import normalize
    from edgekit.spec import ImagePreprocess
    from tests.support.bundles import rewrite
    from tests.support.models import save_keras

    # image classifier: a small CNN on 16x16 shapes, every variant the runtime reads
    images, labels, names = generate(900, 16, seed=3)
    spec = ImagePreprocess(height=16, width=16, scale=1 / 255, mean=(0.5,), std=(0.25,))
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    h = inputs
    for filters in (8, 16):
        h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(len(names), activation="softmax")(keras.layers.Flatten()(h)))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(normalize(images[:700], spec), labels[:700], epochs=8, batch_size=32, verbose=0)
    save_keras(model, root / "shapes.keras")
    for i in range(700, 900):
        target = root / ("calib" if i < 860 else "evalset") / names[labels[i]]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(target / f"{i:04d}.png")
    (root / "images").mkdir()
    for i in range(860, 872):
        Image.fromarray(images[i]).save(root / "images" / f"{i:04d}.png")
    np.save(root / "images.npy", images[860:872])
    (root / "shapes.preprocess.yaml").write_text(
        "kind: image\nheight: 16\nwidth: 16\nscale: 0.00392156862745098\nmean: [0.5]\nstd: [0.25]\n")
    (root / "labels.txt").write_text("\n".join(names) + "\n")
    convert(ConvertConfig(model=root / "shapes.keras", output=root / "shapes.edgekit", data=root / "calib",
                          preprocess=root / "shapes.preprocess.yaml", labels=root / "labels.txt",
                          variants=("tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8")))
    with zipfile.ZipFile(root / "shapes.edgekit") as z:
        (root / "shapes-int8.tflite").write_bytes(z.read("models/tflite-int8.tflite"))
        (root / "shapes-fp32.onnx").write_bytes(z.read("models/onnx-fp32.onnx"))

    # audio: 49x10 MFCC into a small CNN, streamed over a WAV
    keras.utils.set_random_seed(7)
    inp = keras.Input((49, 10, 1))
    h = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    save_keras(keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))),
               root / "kws.keras")
    (root / "kws.preprocess.yaml").write_text(
        "preprocess: {kind: audio, sample_rate: 16000, clip_samples: 16000, feature: mfcc}\n"
        "labels: [_silence_, 'yes', 'no']\n"
        "postprocess: {kind: classification, top_k: 2}\n")
    convert(ConvertConfig(model=root / "kws.keras", output=root / "kws.edgekit", variants=("tflite-fp32", "onnx-fp32"),
                          allow_random_calibration=True))
    rng = np.random.default_rng(5)
    t = np.arange(32000) / 16000
    clip = 0.3 * np.sin(2 * np.pi * (300 + 400 * t) * t) * (t > 0.7) + 0.02 * rng.standard_normal(t.size)
    with wave.open(str(root / "clip.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes())

    # sensor: 20-row windows of 3 channels
    keras.utils.set_random_seed(11)
    inp = keras.Input((20, 3))
    h = keras.layers.Dense(8, activation="tanh")(keras.layers.Flatten()(inp))
    save_keras(keras.Model(inp, keras.layers.Dense(2, activation="softmax")(h)), root / "imu.keras")
    (root / "imu.preprocess.yaml").write_text(
        "preprocess: {kind: sensor, channels: [ax, ay, az], window: 20, stride: 10, mean: [0, 0, 1], std: [1, 1, 1]}\n"
        "labels: [idle, walk]\n")
    convert(ConvertConfig(model=root / "imu.keras", output=root / "imu.edgekit", variants=("tflite-fp32", "onnx-fp32"),
                          allow_random_calibration=True))
    rows = np.stack([np.sin(np.arange(80) / 3), np.cos(np.arange(80) / 5), 1 + 0.1 * rng.standard_normal(80)], 1)
    (root / "imu.csv").write_text("ax,ay,az\n" + "".join(",".join(f"{v:.5f}" for v in r) + "\n" for r in rows))
    np.save(root / "imu-window.npy", rows[:20].astype("float32"))
    np.save(root / "kws-clip.npy", (clip[:16000]).astype("float32"))

    # signing: a key pair, a signed copy and a copy whose model bytes changed after signing
    for argv in (["keygen", "-o", "key"], ["sign", "signed.edgekit", "--key", "key"]):
        if argv[0] == "sign":
            shutil.copy(root / "shapes.edgekit", root / "signed.edgekit")
        sh([sys.executable, "-m", "edgekit", "-q", *argv], cwd=root, stdout=subprocess.DEVNULL)
    with zipfile.ZipFile(root / "signed.edgekit") as z:
        member = z.read("models/tflite-int8.tflite")
    changed = bytearray(member)
    changed[len(changed) // 2] ^= 0x01
    rewrite(root / "signed.edgekit", root / "tampered.edgekit", members={"models/tflite-int8.tflite": bytes(changed)})
    for f in ("shapes.keras", "kws.keras", "imu.keras"):
        (root / f).unlink()
    shutil.rmtree(root / "calib")


# -- the checks -----------------------------------------------------------------------------------

# (bundle, variant, backend): the predict checks through edgekit's API, in one process per side
PREDICTS = (
    ("shapes.edgekit", "tflite-fp32", "litert"), ("shapes.edgekit", "tflite-int8", "litert"),
    ("shapes.edgekit", "onnx-fp32", "onnxruntime"), ("shapes.edgekit", "onnx-int8", "onnxruntime"),
    ("kws.edgekit", "tflite-fp32", "litert"), ("kws.edgekit", "onnx-fp32", "onnxruntime"),
    ("imu.edgekit", "tflite-fp32", "litert"), ("imu.edgekit", "onnx-fp32", "onnxruntime"),
)
RAW = {"shapes.edgekit": "images.npy", "kws.edgekit": "kws-clip.npy", "imu.edgekit": "imu-window.npy"}


def _probe(out: Path, backends: list[str]) -> None:
    """Inside one Python process: load each bundle variant, predict raw inputs, save raw
    output tensors and results (runs on both sides; only edgekit and numpy needed)."""
    import platform

    import numpy as np

    from edgekit.runtime import load
    from edgekit.runtime.tensors import quantize

    arrays, report = {}, {"machine": platform.machine(), "checks": []}
    for bundle, variant, backend in PREDICTS:
        if backend not in backends:
            continue
        t0 = time.perf_counter()
        model = load(bundle, variant=variant, backend=backend, threads=1)
        raw = np.load(RAW[bundle])
        samples = list(raw) if bundle == "shapes.edgekit" else [raw]  # images: (N, H, W, 3)
        results = []
        for i, sample in enumerate(samples):
            result = model.predict(sample)
            results.append({"label": result.label, "score": result.score,
                            "top_k": [[lab, float(s)] for lab, s in result.top_k]})
            tensor = quantize(model.preprocessor.features(sample), model.input)
            for j, output in enumerate(model.backend.run([tensor])):
                arrays[f"{bundle}|{variant}|{backend}|{i}|{j}"] = np.asarray(output)
        report["checks"].append({"bundle": bundle, "variant": variant, "backend": backend, "package": model.package,
                                 "results": results, "seconds": round(time.perf_counter() - t0, 2)})
        model.close()
    np.savez(out.with_suffix(".npz"), **arrays)
    out.write_text(json.dumps(report))


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _step(inputs: Path, bundle: str, variant: str) -> float | None:
    """One quantization step of the variant's first output, None for float outputs."""
    with zipfile.ZipFile(inputs / bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
    found = next(v for v in manifest["variants"] if v["name"] == variant)
    quant = found["outputs"][0].get("quantization")
    return None if not quant else float(quant["scale"] if not isinstance(quant["scale"], list) else quant["scale"][0])


def _short(proc: subprocess.CompletedProcess) -> str:
    lines = [x for x in (proc.stderr or "").strip().splitlines() if x.strip()]
    return lines[-1][:160] if lines else ""


def run_checks(x86: Side, arm: Side, arch: Arch) -> list[tuple[str, str, str, str, bool]]:
    from tests.support.parity import Verdict, compare_results, compare_tensors

    rows: list[tuple[str, str, str, str, bool]] = []

    def add(check: str, a: str, b: str, verdict: Verdict) -> None:
        rows.append((check, a, b, str(verdict), verdict.ok))
        log(f"{check}: x86 {a} | {arch.name} {b} | {verdict}")

    def both(*args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess, float]:
        a = x86.edgekit(*args)
        t0 = time.perf_counter()
        b = arm.edgekit(*args)
        return a, b, time.perf_counter() - t0

    def exits(check: str, args: tuple[str, ...], expected: int) -> None:
        a, b, sec = both(*args)
        ok = a.returncode == b.returncode == expected
        detail = "" if ok else (_short(b) or _short(a))
        add(check, f"exit {a.returncode}", f"exit {b.returncode} ({sec:.0f} s)",
            Verdict(ok, f"expected {expected}" + (f"; {detail}" if detail else "")))

    tflite = "litert" in arch.backends
    for model in (["shapes-int8.tflite"] if tflite else []) + ["shapes-fp32.onnx"]:
        a, b, sec = both("inspect", model, "--json")
        ja, jb = (json.loads(p.stdout) if p.returncode == 0 else None for p in (a, b))
        same = ja is not None and ja == jb
        add(f"inspect {model} --json", f"exit {a.returncode}", f"exit {b.returncode} ({sec:.0f} s)",
            Verdict(same, "identical JSON" if same else (_short(b) or "JSON differs")))
    exits("verify signed.edgekit --public-key key.pub", ("verify", "signed.edgekit", "--public-key", "key.pub"), 0)
    exits("verify tampered.edgekit --public-key key.pub", ("verify", "tampered.edgekit", "--public-key", "key.pub"), 3)

    runs = [("images:images", "shapes.edgekit", "tflite-int8" if tflite else "onnx-int8"),
            ("wav:clip.wav", "kws.edgekit", "tflite-fp32" if tflite else "onnx-fp32"),
            ("csv:imu.csv", "imu.edgekit", "onnx-fp32")]
    for source, bundle, variant in runs:
        a, b, sec = both("run", bundle, "--source", source, "--variant", variant, "--threads", "1")
        ra, rb = _lines(a.stdout), _lines(b.stdout)
        verdict = compare_results(ra, rb, step=_step(x86.inputs, bundle, variant))
        if a.returncode or b.returncode:
            verdict = Verdict(False, f"exit {a.returncode}/{b.returncode}: {_short(b) or _short(a)}")
        add(f"run {bundle} --source {source} ({variant})", f"{len(ra)} results", f"{len(rb)} results ({sec:.0f} s)",
            verdict)

    # predict through the API, both backends, one process per side
    import numpy as np

    reports = {}
    for side in (x86, arm):
        out = side.inputs / f"probe-{side.name}.json"
        out.unlink(missing_ok=True)
        t0 = time.perf_counter()
        proc = side.python([str(Path(__file__).resolve()), "--probe", str(out), "--backends", ",".join(arch.backends)])
        if proc.returncode:
            add(f"predict (API) on {side.name}", "", "", Verdict(False, _short(proc) or f"exit {proc.returncode}"))
            return rows
        reports[side.name] = (json.loads(out.read_text()), dict(np.load(out.with_suffix(".npz"))),
                              time.perf_counter() - t0)
    (rep_a, arr_a, _), (rep_b, arr_b, sec_b) = reports[x86.name], reports[arm.name]
    log(f"predict probe on {arch.name}: {sec_b:.0f} s")
    for ca, cb in zip(rep_a["checks"], rep_b["checks"], strict=True):
        key = f"{ca['bundle']}|{ca['variant']}|{ca['backend']}|"
        tensors = [compare_tensors(arr_a[k], arr_b[k]) for k in sorted(arr_a) if k.startswith(key)]
        labels = compare_results(ca["results"], cb["results"], step=_step(x86.inputs, ca["bundle"], ca["variant"]))
        ok = labels.ok and all(t.ok for t in tensors)
        worst = next((t for t in tensors if not t.ok), tensors[-1])
        add(f"predict {ca['bundle']} {ca['variant']} ({ca['backend']})",
            _label_counts(ca["results"]), f"{_label_counts(cb['results'])}; {cb['package']} ({cb['seconds']} s)",
            Verdict(ok, f"labels {'equal' if labels.ok else 'DIFFER'}; {len(tensors)} output tensors, {worst.detail}"))

    variants = "tflite-int8,onnx-fp32" if tflite else "onnx-fp32,onnx-int8"
    a, b, sec = both("bench", "shapes.edgekit", "--variants", variants, "--threads", "1", "--runs", "20",
                     "--windows", "1", "--warmup", "2", "--warmup-seconds", "0", "--mode", "invoke", "--format", "json")

    def medians(proc: subprocess.CompletedProcess) -> str:
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            return f"exit {proc.returncode}"
        found = {r["variant"]: (r.get("invoke") or {}).get("median_ms") for r in doc.get("results", [])}
        return ", ".join(f"{k} {v:.3g} ms" if isinstance(v, int | float) else f"{k} failed" for k, v in found.items()) \
            or f"exit {proc.returncode}"

    ok = a.returncode == 0 and b.returncode == 0
    add(f"bench shapes.edgekit ({variants}, 20 runs)", medians(a), medians(b) + f" ({sec:.0f} s)",
        Verdict(ok, "both ran; latency not compared" if ok else _short(b) or _short(a)))

    a, b, sec = both("eval", "shapes.edgekit", "--data", "evalset", "--variants", variants, "--json")
    ea, eb = (json.loads(p.stdout) if p.returncode == 0 else None for p in (a, b))
    fa, fb = (_figures(e) if e else None for e in (ea, eb))
    same = fa is not None and fa == fb
    add(f"eval shapes.edgekit --data evalset ({variants})", _brief(fa) if fa else f"exit {a.returncode}",
        (_brief(fb) if fb else f"exit {b.returncode}") + f" ({sec:.0f} s)",
        Verdict(same, "accuracy and confusion matrices identical" if same else (_short(b) or "figures differ")))
    return rows


def _label_counts(results: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r["label"])] = counts.get(str(r["label"]), 0) + 1
    return " ".join(f"{k}:{v}" for k, v in counts.items())


def _figures(doc: dict) -> dict:
    """Per variant: samples, accuracy and confusion matrix (what must be identical)."""
    return {v["variant"]: {"error": v.get("error"), "samples": v.get("samples"),
                           "accuracy": (v.get("metrics") or {}).get("accuracy", {}).get("value"),
                           "confusion": (v.get("metrics") or {}).get("confusion_matrix", {}).get("rows")}
            for v in doc.get("variants", [])}


def _brief(figures: dict) -> str:
    return ", ".join(f"{name} {f['accuracy']:.3f}" if isinstance(f["accuracy"], int | float) else f"{name} failed"
                     for name, f in figures.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHES), default="arm64")
    parser.add_argument("--rebuild", action="store_true", help="drop the cached tree, packages and inputs first")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="litert,onnxruntime", help=argparse.SUPPRESS)
    parser.add_argument("--make-inputs-here", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:  # edgekit as installed on this side (PYTHONPATH on x86, the tree's site-packages)
        _probe(args.probe, args.backends.split(","))
        return 0
    if args.make_inputs_here:
        sys.path.insert(0, str(REPO))
        _make_inputs_here(args.make_inputs_here)
        return 0

    sys.path.insert(0, str(REPO))
    from tests.support.parity import table

    started = time.perf_counter()
    if os.uname().machine != "x86_64":
        raise SystemExit(f"expected an x86_64 host (the reference side), found {os.uname().machine}")
    arch = ARCHES[args.arch]
    cache = REPO / "out" / arch.name
    if args.rebuild:
        shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    qemu = qemu_binary(REPO / "out" / "arm64", arch.qemu)
    tree = debian_tree(cache, arch)
    installed = install(cache, Side(arch.name, None, tree=tree, qemu=qemu), arch)
    inputs = make_inputs(REPO / "out" / "arm64" / "inputs")
    work = Path(tempfile.mkdtemp(prefix=f"parity-{arch.name}-", dir=cache))
    try:
        shutil.copytree(inputs, work, dirs_exist_ok=True)
        x86 = Side("x86", work)
        arm = Side(arch.name, work, tree=tree, qemu=qemu, python=arch.guest_python)
        log(f"{arch.name} side: {installed}")
        rows = run_checks(x86, arm, arch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"edgekit parity, x86 ({os.uname().machine}, native) vs {arch.name} (Debian {arch.suite} {arch.deb_arch}, "
          f"QEMU user mode under proot): {installed}")
    print(table([r[:4] for r in rows], header=("check", "x86", arch.name, "verdict")))
    bad = [r[0] for r in rows if not r[4]]
    print(f"{len(rows) - len(bad)} of {len(rows)} checks agree; total {time.perf_counter() - started:.0f} s")
    if bad:
        print("mismatch: " + "; ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
