"""C2PA content credentials: signing on write, verification, tamper detection, edits with
ingredients, organisations' own certificates, and `--no-credentials`."""

from __future__ import annotations

import json
import stat
import struct

import numpy as np
import pytest

from sora_cli import provenance
from sora_cli.errors import SoraUsageError
from sora_cli.video_io import probe, sora_metadata, write_video

from conftest import ffmpeg_clip


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "sora-home"
    monkeypatch.setenv("SORA_HOME", str(h))
    return h


def frames(seed: int = 0, n: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (1, 64, 64, 3))
    return np.clip(base + np.arange(n)[:, None, None, None] * 4, 0, 255).astype(np.uint8)


SETTINGS = {"mode": "generate", "prompt": "a red ball bouncing on a beach", "seed": 7,
            "steps": 12, "model": "tiny", "model_hash": "0123abcd", "watermark": "00000000beef"}


def signed_clip(path, **kw):
    fin = provenance.output_finalizer("c2pa.created", SETTINGS, **kw)
    return write_video(path, frames(), 8, metadata=sora_metadata(SETTINGS), finalize=fin)


def mdat_offset(path) -> int:
    data = path.read_bytes()
    i = 0
    while i < len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        if size == 1:
            size = struct.unpack(">Q", data[i + 8:i + 16])[0]
        if kind == b"mdat":
            return i
        i += size
    raise AssertionError("no mdat box")


def test_signed_video_verifies_and_trust_depends_on_anchors(home, tmp_path):
    out = tmp_path / "gen.mp4"
    info = signed_clip(out)
    assert info.frames == 9 and probe(out).sora["prompt"] == SETTINGS["prompt"]
    # The identity was made on first use: a root and a leaf it issued, private keys 0600.
    creds = home / "credentials"
    assert {p.name for p in creds.iterdir()} == {"root.pem", "root.key", "signer.pem",
                                                 "signer.key"}
    assert stat.S_IMODE((creds / "signer.key").stat().st_mode) == 0o600

    r = provenance.verify_video(out)  # the local root is this machine's anchor
    assert r["present"] and r["valid"] and r["state"] == "Trusted" and r["trust"] == "local"
    assert not r["tampered"] and r["failures"] == []
    assert r["action"] == "c2pa.created"
    assert r["digital_source_type"] == provenance.TRAINED_ALGORITHMIC_MEDIA
    assert r["settings"] == SETTINGS and r["watermark"] == "00000000beef"
    assert r["signer"]["common_name"] == "sora-cli local signer"
    assert r["software"]["name"] == "sora-cli"

    # A reader elsewhere (no anchors): the signature is valid, the signer unknown.
    r = provenance.verify_video(out, trust_local_root=False)
    assert r["state"] == "Valid" and r["valid"] and r["trust"] == "untrusted"
    # Given the local root as an explicit anchor: trusted.
    r = provenance.verify_video(out, trust_local_root=False,
                                trust_anchors=[creds / "root.pem"])
    assert r["state"] == "Trusted" and r["trust"] == "trusted"

    # The same identity signs the next file (not a new one per video).
    serial = r["signer"]["serial"]
    signed_clip(tmp_path / "gen2.mp4")
    assert provenance.verify_video(tmp_path / "gen2.mp4")["signer"]["serial"] == serial


def test_flipped_byte_in_video_data_fails_verify(home, tmp_path, sora):
    out = tmp_path / "gen.mp4"
    signed_clip(out)
    ok = sora("inspect", out, "--verify", "--json", env={"SORA_HOME": str(home)})
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)["verify"]
    assert report["ok"] and report["credentials"]["trust"] == "local"

    data = bytearray(out.read_bytes())
    data[mdat_offset(out) + 200] ^= 0xFF
    out.write_bytes(bytes(data))
    r = provenance.verify_video(out)
    assert r["present"] and not r["valid"] and r["state"] == "Invalid" and r["tampered"]
    assert "assertion.bmffHash.mismatch" in r["failures"]

    bad = sora("inspect", out, "--verify", env={"SORA_HOME": str(home)})
    assert bad.returncode == 1
    assert "changed after signing" in bad.stdout
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in bad.stderr
    bad_json = sora("inspect", out, "--verify", "--json", env={"SORA_HOME": str(home)})
    assert bad_json.returncode == 1
    assert json.loads(bad_json.stdout)["verify"]["credentials"]["tampered"] is True


def test_stitch_is_signed_as_an_edit_with_ingredients(home, tmp_path, sora):
    gen = tmp_path / "gen.mp4"
    signed_clip(gen)
    other = ffmpeg_clip(tmp_path / "other.mp4", seconds=1, size="64x64", fps=8)
    out = tmp_path / "joined.mp4"
    res = sora("stitch", gen, other, "-o", out, "--json", env={"SORA_HOME": str(home)})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["credentials"] is True
    r = provenance.verify_video(out)
    assert r["valid"] and not r["tampered"] and r["action"] == "c2pa.edited"
    assert r["ingredients"] == [
        {"title": "gen.mp4", "relationship": "parentOf", "credentials": True},
        {"title": "other.mp4", "relationship": "componentOf", "credentials": False}]
    # One source is AI-generated, the other is not: a composite.
    assert r["digital_source_type"] == provenance.COMPOSITE_WITH_TRAINED
    assert r["settings"]["inputs"] == ["gen.mp4", "other.mp4"]


def test_edited_action_via_api(home, tmp_path):
    src = ffmpeg_clip(tmp_path / "src.mp4", seconds=1, size="64x64", fps=8)
    fin = provenance.output_finalizer("c2pa.edited", {"mode": "extend", "prompt": "more"},
                                      ingredients=[src])
    write_video(tmp_path / "ext.mp4", frames(), 8, finalize=fin)
    r = provenance.verify_video(tmp_path / "ext.mp4")
    assert r["valid"] and r["action"] == "c2pa.edited"
    assert r["digital_source_type"] == provenance.COMPOSITE_WITH_TRAINED
    assert r["ingredients"][0]["title"] == "src.mp4"
    assert r["ingredients"][0]["relationship"] == "parentOf"


def test_lists_of_numbers_in_settings_read_back_as_written(home, tmp_path):
    # c2pa-python alone turns [1280, 720] into the byte string "ANA=" and [0.5, 1.5] into "".
    settings = {**SETTINGS, "size": [1280, 720], "times": [0.5, 1.5], "words": ["a", "b"],
                "nested": {"pair": [3, 300]}, "rows": [[1, 2]], "mixed": [1, "x"]}
    fin = provenance.output_finalizer("c2pa.created", settings)
    write_video(tmp_path / "gen.mp4", frames(), 8, finalize=fin)
    got = provenance.verify_video(tmp_path / "gen.mp4")["settings"]
    assert json.loads(got["size"]) == [1280, 720] and json.loads(got["times"]) == [0.5, 1.5]
    assert json.loads(got["nested"]["pair"]) == [3, 300]
    assert got["words"] == ["a", "b"] and got["mixed"] == [1, "x"]
    assert json.loads(got["rows"][0]) == [1, 2] and got["prompt"] == SETTINGS["prompt"]


def test_no_credentials_writes_an_unsigned_file(home, tmp_path, sora):
    assert provenance.output_finalizer("c2pa.created", SETTINGS, no_credentials=True) is None
    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, size="64x64", fps=8)
    b = ffmpeg_clip(tmp_path / "b.mp4", seconds=1, size="64x64", fps=8, source="testsrc2")
    out = tmp_path / "plain.mp4"
    res = sora("stitch", a, b, "-o", out, "--no-credentials", env={"SORA_HOME": str(home)})
    assert res.returncode == 0, res.stderr
    assert "without content credentials" in res.stderr
    assert not (home / "credentials").exists()  # nothing signed, no identity needed
    r = provenance.verify_video(out)
    assert r["present"] is False and r["valid"] is False
    shown = sora("inspect", out, "--verify", env={"SORA_HOME": str(home)})
    assert shown.returncode == 0
    assert "credentials  none" in shown.stdout and "watermark    not found" in shown.stdout


def test_organisation_certificate(home, tmp_path, sora):
    org = tmp_path / "org"
    provenance._create_local_identity(org)  # stands in for an organisation's CA and signer
    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, size="64x64", fps=8)
    b = ffmpeg_clip(tmp_path / "b.mp4", seconds=1, size="64x64", fps=8)
    out = tmp_path / "org.mp4"
    env = {"SORA_HOME": str(home)}
    res = sora("stitch", a, b, "-o", out, "--sign-cert", org / "signer.pem",
               "--sign-key", org / "signer.key", env=env)
    assert res.returncode == 0, res.stderr
    # Trusted only with the organisation's root as anchor; not chained to this machine's root.
    shown = sora("inspect", out, "--verify", "--json", "--trust-anchor", org / "root.pem",
                 env=env)
    assert json.loads(shown.stdout)["verify"]["credentials"]["trust"] == "trusted"
    plain = json.loads(sora("inspect", out, "--verify", "--json", env=env).stdout)
    assert plain["verify"]["credentials"]["trust"] == "untrusted"
    assert plain["verify"]["credentials"]["valid"]

    # Bad certificate arguments: usage errors before anything is written.
    bad = sora("stitch", a, b, "-o", tmp_path / "x.mp4", "--sign-cert", org / "signer.pem",
               env=env)
    assert bad.returncode == 2 and "--sign-key" in bad.stderr
    other = tmp_path / "other-org"
    provenance._create_local_identity(other)
    wrong = sora("stitch", a, b, "-o", tmp_path / "x.mp4", "--sign-cert", org / "signer.pem",
                 "--sign-key", other / "signer.key", env=env)
    assert wrong.returncode == 2 and "does not belong" in wrong.stderr
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(SoraUsageError):
        provenance.load_identity(org / "root.pem", a)  # a video is not a key


@pytest.mark.parametrize("leave_out, words", [
    ("aki", "has no AuthorityKeyIdentifier"),
    ("eku", "has no ExtendedKeyUsage"),
    ("self", "is self-signed"),
])
def test_a_signing_certificate_c2pa_would_refuse_is_refused_before_any_work(tmp_path, leave_out,
                                                                             words):
    # c2pa refuses such a leaf only when it signs, which comes after the whole generation
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test signer")])
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    b = (x509.CertificateBuilder().subject_name(leaf_name)
         .issuer_name(leaf_name if leave_out == "self" else ca_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now)
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(usage, critical=True))
    if leave_out != "eku":
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
    if leave_out != "aki":
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
    leaf = b.sign(key if leave_out == "self" else ca_key, hashes.SHA256())
    cert, pkey = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    pkey.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with pytest.raises(SoraUsageError, match=words):
        provenance.load_identity(cert, pkey)
