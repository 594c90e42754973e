"""Content credentials (C2PA): who made a video, with what, from what, and whether it changed.

Every MP4 sora-cli writes is signed as the very last change to its bytes (the `finalize` hook
of `video_io.atomic_output`, just before the rename), with a C2PA manifest holding:
- an actions assertion: `c2pa.created` for generated videos (digitalSourceType
  trainedAlgorithmicMedia, the IPTC term for AI-generated media) or `c2pa.edited` for
  stitched/extended ones, with the source files as ingredients (their own manifests, if any,
  are carried along, so provenance chains across edits);
- the tool (sora-cli and its version) and the model (name and hash);
- `org.sora-cli.settings`: the generation settings (prompt, seed, steps, ...);
- `org.sora-cli.watermark`: the invisible watermark's payload, when the frames carry one.

Signing needs a certificate. On first use a local identity is created under `$SORA_HOME`
(default `~/.sora`): a local root CA and a leaf certificate it issues (c2pa refuses
self-signed leaves). Anyone can check that the file is intact and who signed it; it is
"trusted" only for readers who add the local root (or an organisation's root, for
certificates given with `--sign-cert/--sign-key`) to their trust anchors.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from sora_cli.errors import SoraError, SoraUsageError

TRAINED_ALGORITHMIC_MEDIA = ("http://cv.iptc.org/newscodes/digitalsourcetype/"
                             "trainedAlgorithmicMedia")
COMPOSITE_WITH_TRAINED = ("http://cv.iptc.org/newscodes/digitalsourcetype/"
                          "compositeWithTrainedAlgorithmicMedia")
SETTINGS_LABEL = "org.sora-cli.settings"
WATERMARK_LABEL = "org.sora-cli.watermark"
ACTIONS = ("c2pa.created", "c2pa.edited")

# Failure codes that mean the bytes (or the claim) changed after signing.
TAMPER_CODES = {"assertion.bmffHash.mismatch", "assertion.dataHash.mismatch",
                "assertion.boxesHash.mismatch", "assertion.hashedURI.mismatch",
                "assertion.collectionHash.mismatch", "claimSignature.mismatch"}

_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
         ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".webp": "image/webp", ".gif": "image/gif", ".avi": "video/avi",
         ".tif": "image/tiff", ".tiff": "image/tiff"}


# --- signing identity ---------------------------------------------------------------------

@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes            # leaf certificate first, then its issuers
    key_pem: bytes              # the leaf's private key (PKCS#8 PEM)
    alg: str                    # c2pa algorithm name: es256, es384, es512, ps256, ed25519
    local: bool                 # True for the identity made on this machine
    root_pem: bytes | None = None   # the local root (a trust anchor for this machine's files)

    @property
    def subject(self) -> str:
        from cryptography import x509

        return x509.load_pem_x509_certificates(self.chain_pem)[0].subject.rfc4514_string()


def sora_home() -> Path:
    return Path(os.environ.get("SORA_HOME") or Path.home() / ".sora").expanduser()


def credentials_dir(home: Path | None = None) -> Path:
    return (home or sora_home()) / "credentials"


def local_root_pem(home: Path | None = None) -> bytes | None:
    """This machine's local root certificate, or None before anything was signed here."""
    p = credentials_dir(home) / "root.pem"
    return p.read_bytes() if p.exists() else None


_IDENTITY_CACHE: dict[tuple, SigningIdentity] = {}


def local_identity(home: Path | None = None) -> SigningIdentity:
    """The local signing identity, created on first use (root CA + leaf, ES256)."""
    folder = credentials_dir(home)
    key = ("local", str(folder))
    if key in _IDENTITY_CACHE:
        return _IDENTITY_CACHE[key]
    if not (folder / "signer.pem").exists():
        _create_local_identity(folder)
    try:
        ident = SigningIdentity((folder / "signer.pem").read_bytes(),
                                (folder / "signer.key").read_bytes(), "es256", True,
                                (folder / "root.pem").read_bytes())
    except OSError as exc:
        raise SoraError(f"cannot read the local signing identity in {folder}: {exc.strerror}; "
                        "delete that folder to make a new one")
    _IDENTITY_CACHE[key] = ident
    return ident


def _create_local_identity(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".credentials-", dir=folder.parent))
    except OSError as exc:
        raise SoraError(f"cannot create the signing identity under {folder.parent}: "
                        f"{exc.strerror} (set SORA_HOME to a writable folder, or use "
                        "--no-credentials)")
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(days=1)   # tolerate clocks a little behind

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sora-cli"),
                          x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                             "local identity, not verified by anyone")])

    def usage(**on) -> x509.KeyUsage:
        flags = dict.fromkeys(["digital_signature", "content_commitment", "key_encipherment",
                               "data_encipherment", "key_agreement", "key_cert_sign",
                               "crl_sign", "encipher_only", "decipher_only"], False)
        return x509.KeyUsage(**{**flags, **on})

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(name("sora-cli local root"))
            .issuer_name(name("sora-cli local root")).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(now + datetime.timedelta(days=365 * 20))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    # c2pa wants: not self-signed, KeyUsage digitalSignature, an EKU from its list
    # (emailProtection), and an AuthorityKeyIdentifier pointing at the issuer.
    leaf = (x509.CertificateBuilder().subject_name(name("sora-cli local signer"))
            .issuer_name(root.subject).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(now + datetime.timedelta(days=365 * 10))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                root_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM

    def private(key) -> bytes:
        return key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    files = {"root.pem": root.public_bytes(pem), "root.key": private(root_key),
             "signer.pem": leaf.public_bytes(pem) + root.public_bytes(pem),
             "signer.key": private(leaf_key)}
    try:
        for fname, data in files.items():
            fd = os.open(work / fname, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600 if fname.endswith(".key") else 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        try:
            # Atomic: several processes (a torchrun batch) may race to create it; one wins and
            # the others use the winner's identity.
            os.rename(work, folder)
        except OSError:
            if not (folder / "signer.pem").exists():
                raise
    except OSError as exc:
        raise SoraError(f"cannot write the signing identity to {folder}: {exc.strerror}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _c2pa_leaf_problem(leaf) -> str | None:
    """What a signing certificate lacks of what c2pa checks at signing time, worded to follow
    "the first certificate"; None when it has it all (c2pa still checks the EKU's value)."""
    from cryptography import x509

    def has(kind):
        try:
            return leaf.extensions.get_extension_for_class(kind).value
        except x509.ExtensionNotFound:
            return None

    if leaf.issuer == leaf.subject:
        return "is self-signed (give a certificate issued by a CA, then its issuers)"
    usage = has(x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        return "has no KeyUsage digitalSignature"
    if has(x509.ExtendedKeyUsage) is None:
        return "has no ExtendedKeyUsage (such as emailProtection)"
    if has(x509.AuthorityKeyIdentifier) is None:
        return "has no AuthorityKeyIdentifier"
    return None


def load_identity(cert: str | os.PathLike, key: str | os.PathLike) -> SigningIdentity:
    """An organisation's certificate chain (PEM, leaf first) and private key (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    cache_key = ("user", str(cert), str(key))
    if cache_key in _IDENTITY_CACHE:
        return _IDENTITY_CACHE[cache_key]
    cert_p, key_p = Path(cert), Path(key)
    for what, p in (("--sign-cert", cert_p), ("--sign-key", key_p)):
        if not p.is_file():
            raise SoraUsageError(f"{what}: no such file: {p}")
    chain_pem, key_pem = cert_p.read_bytes(), key_p.read_bytes()
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise SoraUsageError(f"--sign-cert {cert_p} is not a PEM certificate chain")
    try:
        pkey = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SoraUsageError(f"--sign-key {key_p} is not an unencrypted PEM private key "
                             f"({str(exc).splitlines()[0] if str(exc) else 'unreadable'})")
    if chain[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            pkey.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo):
        raise SoraUsageError(f"--sign-key {key_p} does not belong to the first certificate "
                             f"in {cert_p}")
    if isinstance(pkey, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(
            pkey.curve.name)
    elif isinstance(pkey, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    elif isinstance(pkey, rsa.RSAPrivateKey):
        alg = "ps256"
    else:
        alg = None
    if alg is None:
        raise SoraUsageError(f"--sign-key {key_p}: unsupported key type (use EC P-256/384/521, "
                             "Ed25519 or RSA)")
    missing = _c2pa_leaf_problem(chain[0])
    if missing:  # c2pa would refuse it only when signing, after the whole generation
        raise SoraUsageError(f"--sign-cert {cert_p}: the first certificate {missing}, which "
                             "C2PA requires of a signer")
    # c2pa wants PKCS#8 PEM whatever the file held (SEC1 "EC PRIVATE KEY" files are common).
    key_pem = pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    ident = SigningIdentity(chain_pem, key_pem, alg, False, None)
    _IDENTITY_CACHE[cache_key] = ident
    return ident


def resolve_identity(sign_cert: str | os.PathLike | None = None,
                     sign_key: str | os.PathLike | None = None) -> SigningIdentity:
    if (sign_cert is None) != (sign_key is None):
        raise SoraUsageError("--sign-cert and --sign-key go together: give both or neither")
    if sign_cert is not None:
        return load_identity(sign_cert, sign_key)
    return local_identity()


# --- signing ------------------------------------------------------------------------------

def _mime(path: Path) -> str | None:
    return _MIME.get(path.suffix.lower())


def _source_type(action: str, settings: dict, ingredients: Sequence[Path]) -> str | None:
    """What the content is, in IPTC terms (recorded as digitalSourceType)."""
    if action == "c2pa.created":
        return TRAINED_ALGORITHMIC_MEDIA
    if settings.get("prompt") is not None:   # extend/bridge: new generated frames + sources
        return COMPOSITE_WITH_TRAINED
    # A plain edit (stitch): AI media if every source says so, a mix if some do.
    ai = [_is_ai_generated(p) for p in ingredients]
    if ai and all(ai):
        return TRAINED_ALGORITHMIC_MEDIA
    if any(ai):
        return COMPOSITE_WITH_TRAINED
    return None


def _is_ai_generated(path: Path) -> bool:
    try:
        manifest = _read(path, None).get("manifest") or {}
    except Exception:
        return False
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for act in assertion.get("data", {}).get("actions", []):
                if act.get("digitalSourceType") in (TRAINED_ALGORITHMIC_MEDIA,
                                                    COMPOSITE_WITH_TRAINED):
                    return True
    return False


def _c2pa_safe(value):
    """`value` with every list of numbers written as its JSON text.

    c2pa-python stores a list of integers as a byte string (each taken modulo 256:
    [1280, 720] comes back as "ANA=") and a list of floats as "", so such lists would reach
    the manifest wrong; as text they read back exactly."""
    if isinstance(value, dict):
        return {k: _c2pa_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return json.dumps(value)
        return [_c2pa_safe(v) for v in value]
    return value


def build_manifest(action: str, settings: dict, ingredient_ids: Sequence[str],
                   source_type: str | None, title: str) -> dict:
    from sora_cli import __version__

    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    settings = _c2pa_safe(json.loads(json.dumps(dict(settings or {}), default=str)))
    agent = {"name": "sora-cli", "version": __version__}
    main = {"action": action, "softwareAgent": agent}
    if source_type:
        main["digitalSourceType"] = source_type
    params = {}
    if settings.get("model"):
        params["model"] = {"name": settings["model"],
                           "version": settings.get("model_hash") or settings.get("model_version")}
    if settings.get("mode"):
        params["description"] = f"sora {settings['mode']}"
    actions = []
    if action == "c2pa.created":
        if ingredient_ids:
            params["ingredientIds"] = list(ingredient_ids)   # inputs to the generator
    elif ingredient_ids:
        # The first source is the parent that was opened; the others were placed into it.
        actions.append({"action": "c2pa.opened",
                        "parameters": {"ingredientIds": [ingredient_ids[0]]}})
        if len(ingredient_ids) > 1:
            actions.append({"action": "c2pa.placed",
                            "parameters": {"ingredientIds": list(ingredient_ids[1:])}})
    if params:
        main["parameters"] = params
    actions.append(main)
    assertions = [{"label": "c2pa.actions", "data": {"actions": actions}},
                  {"label": SETTINGS_LABEL, "data": settings}]
    if settings.get("watermark"):
        from sora_cli.watermark import WATERMARK_ALG

        assertions.append({"label": WATERMARK_LABEL, "data": {
            "alg": WATERMARK_ALG, "payload": str(settings["watermark"])}})
    return {"claim_generator_info": [agent], "title": title, "format": "video/mp4",
            "assertions": assertions}


def sign_video(path: str | os.PathLike, *, action: str = "c2pa.created",
               settings: dict | None = None, ingredients: Iterable[str | os.PathLike] = (),
               identity: SigningIdentity | None = None, source_type: str | None = None,
               title: str | None = None) -> dict:
    """Sign the MP4 at `path` in place with a C2PA manifest; returns {manifest, signer, seconds}.

    `settings` (JSON-able) go into the claim; `ingredients` are the source files (inputs of a
    generation for `c2pa.created`; for `c2pa.edited` the first is the parent, the others were
    placed into it). `title` defaults to the file name (pass the final name when signing a
    temporary file).
    """
    import c2pa

    t0 = time.perf_counter()
    p = Path(path)
    settings = dict(settings or {})
    ingredients = [Path(i) for i in ingredients]
    identity = identity or local_identity()
    if source_type is None:
        source_type = _source_type(action, settings, ingredients)
    ids = [f"ingredient{i}" for i in range(len(ingredients))]
    manifest = build_manifest(action, settings, ids, source_type, title or p.name)
    out = p.with_name(p.name + ".c2pa-signing")
    try:
        streamed = []
        for n, (ing, ing_id) in enumerate(zip(ingredients, ids)):
            rel = ("inputTo" if action == "c2pa.created"
                   else "parentOf" if n == 0 else "componentOf")
            meta = {"title": ing.name, "relationship": rel, "label": ing_id}
            if _mime(ing) and ing.is_file():
                streamed.append((meta, _mime(ing), ing))
            else:
                # A format c2pa cannot open (WebM, ...): record the source by name and type.
                import mimetypes

                meta["format"] = mimetypes.guess_type(ing.name)[0] or "application/octet-stream"
                manifest.setdefault("ingredients", []).append(meta)
        builder = c2pa.Builder(manifest)
        for meta, mime, ing in streamed:
            with open(ing, "rb") as fh:
                builder.add_ingredient(meta, mime, fh)
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(identity.alg, identity.chain_pem, identity.key_pem, None))
        with open(p, "rb") as src, open(out, "w+b") as dst:
            builder.sign(signer, "video/mp4", src, dst)
        os.replace(out, p)
    except c2pa.C2paError as exc:
        raise SoraError(f"signing content credentials failed: {_short(exc)}")
    finally:
        if out.exists():
            out.unlink()
    return {"signer": identity.subject, "local": identity.local,
            "seconds": round(time.perf_counter() - t0, 4)}


def make_finalizer(action: str = "c2pa.created", settings: dict | None = None,
                   ingredients: Iterable[str | os.PathLike] = (),
                   identity: SigningIdentity | None = None,
                   title: str | None = None) -> Callable[[Path], None]:
    """A `finalize(tmp_path)` for `video_io.write_video/atomic_output` that signs the file."""
    ingredients = [Path(i) for i in ingredients]

    def finalize(tmp: Path) -> None:
        # The temporary file is named .<stem>.<pid>.tmp.mp4: record the name it will have.
        name = title or _final_name(tmp)
        sign_video(tmp, action=action, settings=settings, ingredients=ingredients,
                   identity=identity, title=name)

    return finalize


def _final_name(tmp: Path) -> str:
    parts = tmp.name.split(".")
    if len(parts) >= 5 and parts[0] == "" and parts[-2] == "tmp":
        return ".".join(parts[1:-3]) + tmp.suffix
    return tmp.name


def output_finalizer(action: str, settings: dict | None = None,
                     ingredients: Iterable[str | os.PathLike] = (), *,
                     no_credentials: bool = False, sign_cert: str | os.PathLike | None = None,
                     sign_key: str | os.PathLike | None = None,
                     title: str | None = None) -> Callable[[Path], None] | None:
    """The one call every writer makes: a finalizer that signs, or None with --no-credentials.

    Resolves (and on first use creates) the signing identity now, so a bad --sign-cert/--sign-key
    fails before any model work rather than after it.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    if no_credentials:
        return None
    identity = resolve_identity(sign_cert, sign_key)
    return make_finalizer(action, settings, ingredients, identity, title)


# --- verification -------------------------------------------------------------------------

def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read(path: Path, anchors_pem: str | None) -> dict:
    """Run the c2pa reader; {} when the file holds no manifest."""
    import c2pa

    settings = {"verify": {"verify_trust": True}}
    if anchors_pem:
        settings["trust"] = {"user_anchors": anchors_pem}
    ctx = c2pa.Context(c2pa.Settings.from_dict(settings))
    mime = _mime(path) or "video/mp4"
    try:
        with open(path, "rb") as fh:
            reader = c2pa.Reader(mime, fh, None, ctx)
            store = json.loads(reader.json())
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "ManifestNotFound" in str(exc):
            return {}
        return {"error": _short(exc)}
    active = store.get("active_manifest")
    return {"state": state, "results": results, "label": active,
            "manifest": store.get("manifests", {}).get(active, {})}


def _anchors_pem(trust_anchors: Iterable[str | os.PathLike | bytes]) -> str:
    out = []
    for a in trust_anchors:
        if isinstance(a, bytes):
            out.append(a.decode("ascii", "replace"))
            continue
        p = Path(a)
        if not p.is_file():
            raise SoraUsageError(f"--trust-anchor: no such file: {p}")
        text = p.read_text("ascii", "replace")
        if "BEGIN CERTIFICATE" not in text:
            raise SoraUsageError(f"--trust-anchor {p} holds no PEM certificate")
        out.append(text)
    return "\n".join(out)


def _signer_trusted(got: dict) -> bool:
    # From the certificate check itself, so that a tampered file still says who signed it.
    success = (got["results"].get("activeManifest") or {}).get("success", [])
    return any(c.get("code") == "signingCredential.trusted" for c in success)


def verify_video(path: str | os.PathLike, trust_local_root: bool = True,
                 trust_anchors: Iterable[str | os.PathLike | bytes] = ()) -> dict:
    """Check a file's content credentials.

    Returns {present, valid, state (Trusted/Valid/Invalid), trust (trusted/local/untrusted),
    tampered (changed after signing), signer {common_name, issuer, alg}, action,
    digital_source_type, ingredients, settings, watermark (payload the claim records),
    failures [codes], manifest (label), error}. `trust` is "trusted" when the signer chains
    to one of `trust_anchors`, "local" when it chains to this machine's local sora-cli root
    (signed here: nobody else can vouch for it), "untrusted" otherwise.
    """
    p = Path(path)
    if not p.is_file():
        raise SoraError(f"no such file: {p}")
    user = _anchors_pem(trust_anchors)
    got = _read(p, user or None)
    report: dict = {"present": bool(got), "valid": False, "state": None, "trust": None,
                    "tampered": False, "signer": None, "action": None,
                    "digital_source_type": None, "ingredients": [], "settings": None,
                    "watermark": None, "failures": [], "manifest": None, "error": None}
    if not got:
        return report
    if "error" in got:
        report.update(state="Invalid", error=got["error"])
        return report
    trust = "trusted" if _signer_trusted(got) else "untrusted"
    if trust != "trusted" and trust_local_root:
        root = local_root_pem()
        if root is not None:
            local = _read(p, "\n".join(filter(None, [user, root.decode("ascii")])))
            if "state" in local and _signer_trusted(local):
                got, trust = local, "local"
    failures = [f.get("code") for f in (got["results"].get("activeManifest") or {})
                .get("failure", [])]
    m = got["manifest"]
    sig = m.get("signature_info") or {}
    actions = [a for asr in m.get("assertions", []) if asr.get("label", "").startswith(
        "c2pa.actions") for a in asr.get("data", {}).get("actions", [])]
    main = next((a for a in reversed(actions) if a.get("action") in ACTIONS),
                actions[-1] if actions else {})
    data = {asr.get("label"): asr.get("data") for asr in m.get("assertions", [])}
    state = got["state"]
    report.update(
        valid=state in ("Valid", "Trusted"), state=state, trust=trust,
        tampered=any(c in TAMPER_CODES for c in failures),
        signer={"common_name": sig.get("common_name"), "issuer": sig.get("issuer"),
                "alg": sig.get("alg"), "serial": sig.get("cert_serial_number")},
        action=main.get("action"), digital_source_type=main.get("digitalSourceType"),
        software=(main.get("softwareAgent") or {}),
        ingredients=[{"title": i.get("title"), "relationship": i.get("relationship"),
                      "credentials": bool(i.get("active_manifest"))}
                     for i in m.get("ingredients", [])],
        settings=data.get(SETTINGS_LABEL),
        watermark=(data.get(WATERMARK_LABEL) or {}).get("payload"),
        failures=[c for c in failures if c != "signingCredential.untrusted"],
        manifest=got["label"])
    return report


def verify(path: str | os.PathLike, trust_anchors: Iterable[str | os.PathLike | bytes] = (),
           trust_local_root: bool = True, watermark: bool = True) -> dict:
    """`sora inspect --verify`: content credentials plus the invisible watermark.

    Adds "watermark": the detector's reading, and "ok": False when credentials are present
    but invalid or the file changed after signing (the command exits 1 then).
    """
    creds = verify_video(path, trust_local_root, trust_anchors)
    report = {"credentials": creds, "watermark": None}
    if watermark:
        from sora_cli.watermark import detect_watermark_file

        wm = detect_watermark_file(path).to_dict()
        if creds.get("watermark") and wm["found"]:
            wm["matches_credentials"] = wm["payload"] == creds["watermark"]
        report["watermark"] = wm
    report["ok"] = not creds["present"] or (creds["valid"] and not creds["tampered"])
    return report


def describe(report: dict) -> list[tuple[str, str]]:
    """(label, text) lines for people, from `verify`'s report."""
    c = report["credentials"]
    lines: list[tuple[str, str]] = []
    if not c["present"]:
        lines.append(("credentials", "none (no C2PA manifest in this file)"))
    elif c.get("error"):
        lines.append(("credentials", f"INVALID: {c['error']}"))
    else:
        verdict = ("valid" if c["valid"] and not c["tampered"] else "INVALID")
        trust = {"trusted": "trusted signer",
                 "local": "local certificate of this machine (not verifiable elsewhere)",
                 "untrusted": "signer not in your trust anchors"}[c["trust"]]
        lines.append(("credentials", f"{verdict} C2PA manifest, {trust}"))
        s = c["signer"] or {}
        lines.append(("signed by", f"{s.get('common_name')} (issuer {s.get('issuer')}, "
                                   f"{str(s.get('alg')).upper()})"))
        lines.append(("changed", "YES: the file was changed after signing" if c["tampered"]
                      else "no (content matches the signed hash)"))
        if c["failures"]:
            lines.append(("failures", ", ".join(c["failures"])))
        src = (c["digital_source_type"] or "").rsplit("/", 1)[-1]
        lines.append(("action", f"{c['action']}" + (f" ({src})" if src else "")))
        for ing in c["ingredients"]:
            lines.append(("ingredient", f"{ing['title']} ({ing['relationship']}"
                                        + (", has credentials)" if ing["credentials"] else ")")))
        if c["settings"]:
            lines.append(("settings", json.dumps(c["settings"], ensure_ascii=False,
                                                 default=str)))
    wm = report.get("watermark")
    if wm is not None:
        if wm["found"]:
            extra = ""
            if "matches_credentials" in wm:
                extra = (", matches the credentials" if wm["matches_credentials"]
                         else ", DIFFERS from the credentials")
            lines.append(("watermark", f"found, payload {wm['payload']} "
                                       f"(confidence {wm['confidence']:.2f}{extra})"))
        else:
            lines.append(("watermark", "not found"))
    return lines
