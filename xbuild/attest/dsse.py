"""DSSE envelopes (github.com/secure-systems-lab/dsse, v1.0): a payload and signatures over its
pre-authentication encoding, with an ed25519 or ECDSA P-256 key (the keys sigstore and in-toto
tooling take). The signing key stays on the host: it is read here, after the build container is
gone, and never enters one."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from xbuild.errors import ConfigError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class BadSignature(Exception):
    """The envelope is not signed by the key (or is not an envelope)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def load_private(pem: bytes, where: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where} is not an unencrypted PEM private key: {exc}",
                          hint="make one with: openssl genpkey -algorithm ed25519 -out signing.pem") from None
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) and _supported(key):
        return key
    raise ConfigError(f"{where} is a {type(key).__name__.removeprefix('_')} key; xbuild signs with ed25519 "
                      "or ECDSA P-256 only", hint="openssl genpkey -algorithm ed25519 -out signing.pem")


def load_public(pem: bytes, where: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where} is not a PEM public key: {exc}",
                          hint="openssl pkey -in signing.pem -pubout -out signing.pub") from None
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) and _supported(key):
        return key
    raise ConfigError(f"{where} is not an ed25519 or ECDSA P-256 public key")


def _supported(key: object) -> bool:
    """ed25519, or ECDSA on P-256: the curves in-toto and sigstore tooling verify."""
    curve = getattr(key, "curve", None)
    return curve is None or isinstance(curve, ec.SECP256R1)


def keyid(key: PublicKey) -> str:
    """The sha256 of the public key's DER (SubjectPublicKeyInfo): names the key, proves nothing."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign(payload: bytes, key: PrivateKey, payload_type: str = PAYLOAD_TYPE) -> dict:
    message = pae(payload_type, payload)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(message)
    else:
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))  # DER, as sigstore writes it
    return {"payloadType": payload_type, "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": keyid(key.public_key()), "sig": base64.b64encode(signature).decode()}]}


def open_envelope(envelope: dict, key: PublicKey) -> bytes:
    """The payload, when one of the envelope's signatures is the key's; else BadSignature."""
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        message = pae(envelope["payloadType"], payload)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadSignature(f"not a DSSE envelope ({exc})") from None
    for signature in signatures:
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            else:
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return payload
        except InvalidSignature:
            continue
    raise BadSignature(f"no signature by key {keyid(key)[:16]}")


def dumps(envelope: dict) -> bytes:
    return (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()


def payload(envelope: dict) -> bytes:
    """The payload, unchecked: for reading an envelope when no key is given."""
    try:
        return base64.b64decode(envelope["payload"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadSignature(f"not a DSSE envelope ({exc})") from None
