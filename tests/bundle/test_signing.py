"""Signed bundles: keygen, sign, verify, and `load`/`run` with a public key.

The bundles are real and loadable without TensorFlow: a tiny ONNX classifier built with
onnx.helper, written by `write_bundle`, run by onnxruntime on a CSV sensor stream.
"""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import MANIFEST_NAME, Manifest, Variant, open_bundle, write_bundle
from edgekit.errors import InputError, IntegrityError, MissingDependencyError
from edgekit.spec import PostprocessKind, PostprocessSpec, SensorPreprocess, TensorSpec
from tests.support.bundles import rewrite
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import REPO, need_module, need_program

need_module("cryptography", 'pip install "edgekit-ml[sign]"')
need_module("onnxruntime", 'pip install "edgekit-ml[onnx]"')

from edgekit.bundle import signing  # noqa: E402 - after the skip for a missing cryptography
from edgekit.bundle.signature import SIGNATURE_NAME  # noqa: E402


def tiny_onnx() -> bytes:
    """Flatten (1, 4, 2) -> MatMul (8x3) -> Softmax: a real model onnxruntime runs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.arange(24, dtype=np.float32).reshape(8, 3) / 10
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["l"]),
         helper.make_node("Softmax", ["l"], ["y"], axis=-1)],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_bundle(path: Path, name: str = "tiny") -> Path:
    variant = Variant(name="onnx-fp32", format="onnx", file="models/onnx-fp32.onnx", precision="fp32",
                      inputs=(TensorSpec("x", (1, 4, 2), "float32"),), outputs=(TensorSpec("y", (1, 3), "float32"),))
    manifest = Manifest(name=name, variants=(variant,), preprocess=SensorPreprocess(channels=("a", "b"), window=4,
                                                                                    stride=4),
                        labels=("p", "q", "r"), postprocess=PostprocessSpec(kind=PostprocessKind.CLASSIFICATION))
    write_bundle(path, manifest, {variant.file: tiny_onnx()})
    return path


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "tiny.edgekit")


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(12)))
    return path


@pytest.fixture
def key(tmp_path: Path) -> signing.KeyPair:
    return signing.generate_keypair(tmp_path / "signing.key")


@pytest.fixture
def other_key(tmp_path: Path) -> signing.KeyPair:
    return signing.generate_keypair(tmp_path / "other.key")


@pytest.fixture
def signed(bundle: Path, key: signing.KeyPair) -> Path:
    signing.sign_bundle(bundle, key.private)
    return bundle


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def refused(result, *fragments: str) -> None:
    assert_one_line_error(result, 3, "edgekit: refused: ", "failed signature verification", *fragments)


# ---------------------------------------------------------------------------
# the happy path


def test_keygen_sign_verify_run(tmp_path, bundle, rows):
    key = tmp_path / "release.key"
    result = run_cli("keygen", "-o", str(key))
    assert result.code == 0, result.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    pub = tmp_path / "release.key.pub"
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    fingerprint = signing.fingerprint(signing.load_public_key(pub)[0])
    assert fingerprint in result.stdout and len(fingerprint) == len("sha256:") + 64

    result = run_cli("sign", str(bundle), "--key", str(key))
    assert result.code == 0, result.stderr
    assert fingerprint in result.stdout
    assert sorted(members(bundle)) == [MANIFEST_NAME, "models/onnx-fp32.onnx", SIGNATURE_NAME]

    result = run_cli("verify", str(bundle), "--public-key", str(pub))
    assert result.code == 0, result.stderr
    assert result.stdout.count("\n") == 1 and fingerprint in result.stdout and "good signature" in result.stdout
    assert result.stderr == ""
    result = run_cli("verify", str(bundle))  # integrity without a key: the signature is said to be unchecked
    assert result.code == 0, result.stderr
    assert "integrity verified, 1 file(s) match the manifest" in result.stdout
    assert "signed, signature not checked (pass --public-key" in result.stdout

    result = run_cli("run", str(bundle), "--source", f"csv:{rows}", "--public-key", str(pub))
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3 and all(line["variant"] == "onnx-fp32" for line in lines)
    assert f"signature by key {fingerprint} verified" in result.stderr


def test_signature_document(signed, key):
    files = members(signed)
    document = json.loads(files[SIGNATURE_NAME])
    assert document["algorithm"] == "ed25519"
    assert document["key_fingerprint"] == key.fingerprint
    import hashlib

    assert document["manifest_sha256"] == hashlib.sha256(files[MANIFEST_NAME]).hexdigest()
    assert len(base64.b64decode(document["signature"])) == 64
    public, _ = signing.load_public_key(key.public)
    public.verify(base64.b64decode(document["signature"]), files[MANIFEST_NAME])  # over the exact bytes


def test_signing_keeps_every_other_byte(bundle, key):
    before = members(bundle)
    signing.sign_bundle(bundle, key.private)
    after = members(bundle)
    assert {k: v for k, v in after.items() if k != SIGNATURE_NAME} == before


def test_load_accepts_a_path_pem_bytes_raw_bytes_or_a_key_object(signed, key, monkeypatch):
    from cryptography.hazmat.primitives import serialization

    from edgekit.runtime import load

    public, _ = signing.load_public_key(key.public)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for given in (key.public, str(key.public), key.public.read_bytes(), raw, public):
        model = load(signed, public_key=given)
        assert model.bundle.signed_by == key.fingerprint
        assert model.predict(np.ones((4, 2), np.float32)).label in ("p", "q", "r")
    assert load(signed).bundle.signed_by is None  # no key asked for: not checked


def test_openssl_verifies_the_signature(signed, key, tmp_path):
    openssl = need_program("openssl", "apt-get install openssl")
    files = members(signed)
    (tmp_path / "manifest.json").write_bytes(files[MANIFEST_NAME])
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(json.loads(files[SIGNATURE_NAME])["signature"]))
    proc = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(key.public), "-rawin",
                           "-in", str(tmp_path / "manifest.json"), "-sigfile", str(tmp_path / "sig.bin")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Signature Verified Successfully" in proc.stdout


def test_an_openssl_key_signs(bundle, tmp_path):
    openssl = need_program("openssl", "apt-get install openssl")
    private, public = tmp_path / "ossl.pem", tmp_path / "ossl.pub"
    subprocess.run([openssl, "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run([openssl, "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    assert run_cli("sign", str(bundle), "--key", str(private)).code == 0
    assert run_cli("verify", str(bundle), "--public-key", str(public)).code == 0


def test_resigning_replaces_the_signature(signed, key, other_key):
    result = run_cli("sign", str(signed), "--key", str(other_key.private))
    assert result.code == 0, result.stderr
    assert f"replacing a signature by {key.fingerprint}" in result.stdout
    assert list(members(signed)).count(SIGNATURE_NAME) == 1
    assert open_bundle(signed, public_key=other_key.public).signed_by == other_key.fingerprint
    with pytest.raises(IntegrityError, match="another key"):
        open_bundle(signed, public_key=key.public)


def test_signed_bundles_load_without_a_key_and_unsigned_ones_still_do(signed, tmp_path):
    from edgekit.runtime import load

    assert open_bundle(signed).signature_raw is not None
    assert load(signed).predict(np.ones((4, 2), np.float32)).kind == "classification"
    unsigned = make_bundle(tmp_path / "plain.edgekit")
    assert open_bundle(unsigned).signature_raw is None
    assert load(unsigned).variant.name == "onnx-fp32"


# ---------------------------------------------------------------------------
# refusals (exit 3, one line, nothing parsed)


def test_unsigned_bundle_is_refused(bundle, key, rows):
    refused(run_cli("verify", str(bundle), "--public-key", str(key.public)),
            f"expected a signature by key {key.fingerprint}", "found an unsigned bundle", "edgekit sign")
    refused(run_cli("run", str(bundle), "--source", f"csv:{rows}", "--public-key", str(key.public)),
            "found an unsigned bundle")
    from edgekit.runtime import load

    with pytest.raises(IntegrityError, match="unsigned"):
        load(bundle, public_key=key.public)


def test_wrong_key_is_refused(signed, key, other_key, rows):
    refused(run_cli("verify", str(signed), "--public-key", str(other_key.public)),
            f"expected a signature by key {other_key.fingerprint}", f"found a signature by another key ({key.fingerprint})")
    refused(run_cli("run", str(signed), "--source", f"csv:{rows}", "--public-key", str(other_key.public)),
            "another key")


def test_a_key_claim_does_not_fool_the_check(signed, key, other_key, tmp_path):
    """Rewriting key_fingerprint to the expected key's changes nothing: the signature decides."""
    files = members(signed)
    document = json.loads(files[SIGNATURE_NAME])
    document["key_fingerprint"] = other_key.fingerprint
    forged = rewrite(signed, tmp_path / "forged.edgekit", members={SIGNATURE_NAME: json.dumps(document).encode()})
    refused(run_cli("verify", str(forged), "--public-key", str(other_key.public)), "does not match the manifest")


def test_manifest_changed_after_signing_is_refused(signed, key, tmp_path, rows):
    document = json.loads(members(signed)[MANIFEST_NAME])
    document["labels"] = ["p", "q", "evil"]  # hashes still consistent: only the signature catches it
    edited = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
    tampered = rewrite(signed, tmp_path / "tampered.edgekit", manifest=edited)
    assert open_bundle(tampered).manifest.labels[-1] == "evil"  # a valid bundle without a key
    refused(run_cli("verify", str(tampered), "--public-key", str(key.public)),
            "found a signature over another manifest", "changed after signing")
    refused(run_cli("run", str(tampered), "--source", f"csv:{rows}", "--public-key", str(key.public)),
            "changed after signing")
    whitespace = rewrite(signed, tmp_path / "ws.edgekit", manifest=members(signed)[MANIFEST_NAME] + b"\n")
    refused(run_cli("verify", str(whitespace), "--public-key", str(key.public)), "another manifest")


def test_model_swapped_with_a_matching_manifest_is_refused(signed, key, tmp_path):
    """An attacker who swaps the model and fixes its hash in the manifest still needs the key."""
    import hashlib

    files = members(signed)
    evil = files["models/onnx-fp32.onnx"].replace(b"tiny", b"evil")
    document = json.loads(files[MANIFEST_NAME])
    document["files"]["models/onnx-fp32.onnx"] = {"sha256": hashlib.sha256(evil).hexdigest(), "size": len(evil)}
    swapped = rewrite(signed, tmp_path / "swapped.edgekit", members={"models/onnx-fp32.onnx": evil},
                      manifest=json.dumps(document, indent=2, sort_keys=True).encode() + b"\n")
    assert open_bundle(swapped)  # consistent hashes
    refused(run_cli("verify", str(swapped), "--public-key", str(key.public)), "another manifest")


def test_signature_copied_from_another_bundle_is_refused(signed, key, tmp_path):
    other = make_bundle(tmp_path / "other.edgekit", name="other")
    signing.sign_bundle(other, key.private)
    copied = rewrite(signed, tmp_path / "copied.edgekit", members={SIGNATURE_NAME: members(other)[SIGNATURE_NAME]})
    refused(run_cli("verify", str(copied), "--public-key", str(key.public)),
            "found a signature over another manifest", "copied from another bundle")


def _garbage(document: dict) -> dict[str, bytes]:
    good = json.dumps(document).encode()
    signature = bytearray(base64.b64decode(document["signature"]))
    signature[5] ^= 0x01
    return {
        "not JSON": b"this is not json {",
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "binary": bytes(range(256)),
        "a JSON list": b"[1, 2, 3]",
        "no signature": json.dumps({k: v for k, v in document.items() if k != "signature"}).encode(),
        "not base64": json.dumps({**document, "signature": "%%%not base64%%%"}).encode(),
        "short signature": json.dumps({**document, "signature": base64.b64encode(b"x" * 10).decode()}).encode(),
        "other algorithm": json.dumps({**document, "algorithm": "rsa-pss"}).encode(),
        "flipped bit": json.dumps({**document, "signature": base64.b64encode(bytes(signature)).decode()}).encode(),
        "signature a number": json.dumps({**document, "signature": 12}).encode(),
        "multi-line claims": json.dumps({**document, "key_fingerprint": "sha256:x\nTraceback",
                                         "algorithm": "ed25519\n" * 5000}).encode(),
        "bad key claim": json.dumps({**document, "key_fingerprint": "sha256:abc\nline two"}).encode(),
    }


@pytest.mark.parametrize("case", ["not JSON", "truncated", "empty", "binary", "a JSON list", "no signature",
                                  "not base64", "short signature", "other algorithm", "flipped bit",
                                  "signature a number", "multi-line claims", "bad key claim"])
def test_garbage_signature_is_refused(signed, key, tmp_path, case):
    data = _garbage(json.loads(members(signed)[SIGNATURE_NAME]))[case]
    bad = rewrite(signed, tmp_path / "bad.edgekit", members={SIGNATURE_NAME: data})
    refused(run_cli("verify", str(bad), "--public-key", str(key.public)), "signature")
    with pytest.raises(IntegrityError):
        open_bundle(bad, public_key=key.public)
    assert open_bundle(bad).signature_raw == data  # without a key the signature is not read


def test_an_oversized_signature_member_is_refused_even_without_a_key(signed, tmp_path):
    bad = rewrite(signed, tmp_path / "big.edgekit", members={SIGNATURE_NAME: b" " * (65 * 1024)})
    assert_one_line_error(run_cli("inspect", str(bad)), 3, f"byte {SIGNATURE_NAME}")


def test_only_the_signature_may_be_unlisted(signed, tmp_path):
    extra = rewrite(signed, tmp_path / "extra.edgekit", members={"run.sh": b"#!/bin/sh\n"})
    with pytest.raises(IntegrityError, match=r"present but not listed \['run.sh'\]"):
        open_bundle(extra)
    renamed = rewrite(signed, tmp_path / "renamed.edgekit", rename={SIGNATURE_NAME: "signature.json.bak"})
    with pytest.raises(IntegrityError, match=r"present but not listed \['signature.json.bak'\]"):
        open_bundle(renamed)


def test_a_manifest_may_not_list_the_signature(bundle, tmp_path):
    variant = Variant(name="onnx-fp32", format="onnx", file=SIGNATURE_NAME, precision="fp32",
                      inputs=(TensorSpec("x", (1, 4, 2), "float32"),), outputs=(TensorSpec("y", (1, 3), "float32"),))
    with pytest.raises(InputError, match="reserved"):
        write_bundle(tmp_path / "r.edgekit", Manifest(name="r", variants=(variant,)), {SIGNATURE_NAME: b"x"})
    files = members(bundle)
    document = json.loads(files[MANIFEST_NAME])
    entry = document["files"].pop("models/onnx-fp32.onnx")
    document["files"][SIGNATURE_NAME] = entry
    document["variants"][0]["file"] = SIGNATURE_NAME
    bad = tmp_path / "listed.edgekit"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr(MANIFEST_NAME, json.dumps(document))
        archive.writestr(SIGNATURE_NAME, files["models/onnx-fp32.onnx"])
    with pytest.raises(IntegrityError, match="reserved for the signature"):
        open_bundle(bad)


def test_signature_is_checked_before_anything_is_parsed(signed, key, tmp_path, monkeypatch):
    import edgekit.runtime.model as runtime_model
    from edgekit.runtime import load

    def no_parsing(*args, **kwargs):
        raise AssertionError("a model byte was parsed")

    monkeypatch.setattr(runtime_model, "open_backend", no_parsing)
    other = make_bundle(tmp_path / "other.edgekit", name="other")
    signing.sign_bundle(other, key.private)
    copied = rewrite(signed, tmp_path / "copied.edgekit", members={SIGNATURE_NAME: members(other)[SIGNATURE_NAME]})
    with pytest.raises(IntegrityError, match="another manifest"):
        load(copied, public_key=key.public)
    # the raw manifest is authenticated before it is parsed: garbage is refused by the signature
    garbage = rewrite(signed, tmp_path / "garbage.edgekit", manifest=b"\xff not json")
    with pytest.raises(IntegrityError, match="failed signature verification"):
        open_bundle(garbage, public_key=key.public)


def test_a_signed_run_imports_no_tensorflow(signed, key, rows):
    code = textwrap.dedent(
        f"""
        import json, sys, contextlib, io
        from edgekit.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(["-q", "run", {str(signed)!r}, "--source", "csv:{rows}", "--public-key", {str(key.public)!r}])
        print(json.dumps({{"rc": rc, "heavy": [m for m in ("tensorflow", "keras", "tf2onnx") if m in sys.modules],
                          "crypto": "cryptography" in sys.modules}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(proc.stdout) == {"rc": 0, "heavy": [], "crypto": True}


# ---------------------------------------------------------------------------
# usage errors (exit 1)


def test_keygen_refuses_to_overwrite(tmp_path):
    key = tmp_path / "k"
    assert run_cli("keygen", "-o", str(key)).code == 0
    before = key.read_bytes(), (tmp_path / "k.pub").read_bytes()
    assert_one_line_error(run_cli("keygen", "-o", str(key)), 1, "already exists", "--force")
    assert (key.read_bytes(), (tmp_path / "k.pub").read_bytes()) == before

    result = run_cli("keygen", "-o", str(key), "--force")
    assert result.code == 0, result.stderr
    assert key.read_bytes() != before[0] and (tmp_path / "k.pub").read_bytes() != before[1]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    lonely = tmp_path / "lonely"
    (tmp_path / "lonely.pub").write_text("someone's public key\n")
    assert_one_line_error(run_cli("keygen", "-o", str(lonely)), 1, "lonely.pub", "already exists")
    assert not lonely.exists()


def test_keygen_into_a_missing_directory(tmp_path):
    assert_one_line_error(run_cli("keygen", "-o", str(tmp_path / "nowhere" / "k")), 1, "no such directory")


def test_sign_with_a_public_key_is_an_error(bundle, key):
    before = bundle.read_bytes()
    assert_one_line_error(run_cli("sign", str(bundle), "--key", str(key.public)), 1,
                          "edgekit: error: ", "found a public key", "not KEY.pub")
    assert bundle.read_bytes() == before


def test_sign_and_verify_with_bad_key_files(bundle, signed, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    assert_one_line_error(run_cli("sign", str(bundle), "--key", str(junk)), 1, "no PEM private key")
    assert_one_line_error(run_cli("verify", str(signed), "--public-key", str(junk)), 1, "no PEM public key")
    assert_one_line_error(run_cli("sign", str(bundle), "--key", str(tmp_path / "absent")), 1, "no such file")
    assert_one_line_error(run_cli("verify", str(signed), "--public-key", str(tmp_path / "absent.pub")), 1,
                          "no such file")


def test_verify_of_a_missing_bundle(key, tmp_path):
    assert_one_line_error(run_cli("verify", str(tmp_path / "absent.edgekit"), "--public-key", str(key.public)), 1,
                          "expected an existing file", "no such file")


def test_sign_refuses_a_damaged_bundle(bundle, key, tmp_path):
    damaged = rewrite(bundle, tmp_path / "damaged.edgekit", members={"models/onnx-fp32.onnx": b"swapped"})
    before = damaged.read_bytes()
    assert_one_line_error(run_cli("sign", str(damaged), "--key", str(key.private)), 3, "failed verification")
    assert damaged.read_bytes() == before


def test_missing_cryptography_names_the_extra(signed, key, monkeypatch):
    from edgekit.runtime import load

    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "edgekit-ml\[sign\]"'):
        load(signed, public_key=key.public)
    assert load(signed).variant.name == "onnx-fp32"  # no key asked for: cryptography is not needed


def test_verify_without_a_key_checks_integrity(signed, tmp_path):
    """`edgekit verify BUNDLE` was a usage error without --public-key although the hashes can
    be checked without one: now it checks them and says the signature was not checked."""
    result = run_cli("verify", str(make_bundle(tmp_path / "plain.edgekit")))
    assert result.code == 0, result.stderr
    assert result.stdout.strip().endswith("(sizes and sha256); unsigned")
    files = members(signed)
    evil = files["models/onnx-fp32.onnx"].replace(b"tiny", b"evil")  # the manifest's hash no longer fits
    swapped = rewrite(signed, tmp_path / "swapped.edgekit", members={"models/onnx-fp32.onnx": evil})
    assert_one_line_error(run_cli("verify", str(swapped)), 3, "swapped.edgekit", "the manifest says",
                          "tampered with")
