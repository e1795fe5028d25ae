"""DSSE pre-authentication encoding and in-toto statements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trust import dsse
from trust.errors import SignatureDataError


def test_pae_matches_the_dsse_spec_example() -> None:
    # protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_statement_roundtrip_and_subject_match() -> None:
    raw = dsse.statement("r", "ab" * 32, dsse.COSIGN_SIGN_PREDICATE)
    st = dsse.parse_statement(dsse.Envelope(dsse.INTOTO_PAYLOAD_TYPE, raw, (b"s",)))
    assert st.predicate_type == dsse.COSIGN_SIGN_PREDICATE
    assert st.covers("sha256:" + "ab" * 32)
    assert not st.covers("sha256:" + "cd" * 32)
    assert json.loads(raw)["subject"] == [{"name": "r", "digest": {"sha256": "ab" * 32}}]


def test_cosign_v3_statement_from_vector(vectors: Path) -> None:
    doc = json.loads((vectors / "sigstore-rs" / "bundle_v03.json").read_bytes())
    env = dsse.Envelope.from_json_obj(doc["dsseEnvelope"])
    st = dsse.parse_statement(env)
    assert st.predicate_type == dsse.COSIGN_SIGN_PREDICATE
    assert st.covers("sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172")


@pytest.mark.parametrize(("payload_type", "payload", "message"), [
    ("text/plain", b"{}", "payloadType"),
    (dsse.INTOTO_PAYLOAD_TYPE, b"[]", "not an in-toto statement"),
    (dsse.INTOTO_PAYLOAD_TYPE, b'{"_type":"https://in-toto.io/Statement/v1","subject":[]}', "predicateType"),
    (dsse.INTOTO_PAYLOAD_TYPE, b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","subject":[]}',
     "no subject"),
])
def test_statement_rejections(payload_type: str, payload: bytes, message: str) -> None:
    with pytest.raises(SignatureDataError, match=message):
        dsse.parse_statement(dsse.Envelope(payload_type, payload, (b"s",)))


def test_envelope_rejections() -> None:
    with pytest.raises(SignatureDataError, match="no signatures"):
        dsse.Envelope.from_bytes(b'{"payloadType":"t","payload":"","signatures":[]}')
    with pytest.raises(SignatureDataError, match="not valid base64"):
        dsse.Envelope.from_bytes(b'{"payloadType":"t","payload":"!!","signatures":[{"sig":"AA=="}]}')
