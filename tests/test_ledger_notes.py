"""C2SP signed notes, checkpoints, cosignature/v1 and tlog-proof receipts, byte for byte."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from souverain.ledger import merkle
from souverain.ledger.checkpoint import Checkpoint, Receipt, open_checkpoint, sign_checkpoint, verify_receipt
from souverain.ledger.note import (
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Signer,
    NoteError,
    format_skey,
    open_note,
    parse_note,
    parse_signature_lines,
    parse_skey,
    sign_note,
    verifier_from_vkey,
)

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
TESSERA_SKEY = "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg"
TESSERA_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"


def signer(name: str = "log.example/test") -> Ed25519Signer:
    key = Ed25519PrivateKey.generate()
    return Ed25519Signer(name, key.public_key().public_bytes_raw(), key.sign)


def cosigner(name: str = "witness.example/w1", now: float = 1679315147) -> CosignatureSigner:
    key = Ed25519PrivateKey.generate()
    return CosignatureSigner(name, key.public_key().public_bytes_raw(), key.sign, clock=lambda: now)


def test_spec_example_note_verifies() -> None:
    note, sigs = open_note(SPEC_NOTE, [verifier_from_vkey(SPEC_VKEY)])
    assert note.text == "This is an example message.\n" and sigs[0].key_id.hex() == "530d903a"
    assert note.format() == SPEC_NOTE  # parse -> format is the identity


def test_spec_example_note_altered_is_rejected() -> None:
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(SPEC_NOTE.replace("example message", "example massage"), [verifier_from_vkey(SPEC_VKEY)])


def test_tessera_signer_key_gives_its_verifier_key() -> None:
    name, seed = parse_skey(TESSERA_SKEY)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    s = Ed25519Signer(name, private.public_key().public_bytes_raw(), private.sign)
    assert s.vkey == TESSERA_VKEY
    assert format_skey(name, seed) == TESSERA_SKEY
    with pytest.raises(NoteError):
        parse_skey(TESSERA_SKEY.replace("33d7b496", "33d7b497"))


def test_spec_cosignature_line_decodes() -> None:
    line = (
        "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0"
        "xUe+mbIUBkBIfZ+qnA==\n"
    )
    (sig,) = parse_signature_lines(line)
    assert sig.key_id.hex() == "8d66cf3f"
    assert CosignatureVerifier.timestamp(sig.signature) == 1679315147
    assert len(sig.signature) == 72


def test_checkpoint_bytes_and_signature_line() -> None:
    s = signer("example.com/behind-the-sofa")
    root = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    note = sign_checkpoint(Checkpoint("example.com/behind-the-sofa", 20852163, root), s)
    text, _, sigline = note.partition("\n\n")
    assert text + "\n" == "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert sigline.startswith("\u2014 example.com/behind-the-sofa ") and sigline.endswith("\n")
    raw = base64.b64decode(sigline.split(" ")[-1])
    assert raw[:4] == s.key_id and len(raw) == 4 + 64
    opened = open_checkpoint(note, s.verifier())
    assert opened.size == 20852163 and opened.root == root


def test_cosignature_v1_message_is_exact() -> None:
    log, w = signer("example.com/behind-the-sofa"), cosigner()
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    seen: list[bytes] = []
    spy = CosignatureSigner(w.name, w.public_key, lambda m: seen.append(m) or w._sign(m), clock=lambda: 1679315147)
    note = sign_note(body, [log, spy])
    assert seen == [b"cosignature/v1\ntime 1679315147\n" + body.encode()]
    opened = open_checkpoint(note, log.verifier(), witnesses=[w.verifier()], quorum=1)
    assert opened.cosigners == {"witness.example/w1": 1679315147}
    assert w.vkey.startswith("witness.example/w1+") and verifier_from_vkey(w.vkey).key_id == w.key_id
    # The key id of a cosigner differs from a log key's with the same name and key (type 0x04).
    assert Ed25519Signer(w.name, w.public_key, w._sign).key_id != w.key_id


def test_witness_quorum_and_unknown_signatures() -> None:
    log, w1, w2 = signer(), cosigner("w.example/1"), cosigner("w.example/2")
    stranger = signer("someone.example/else")
    note = sign_note(Checkpoint(log.name, 3, bytes(32)).text(), [log, w1, stranger])
    opened = open_checkpoint(note, log.verifier(), witnesses=[w1.verifier(), w2.verifier()])
    assert set(opened.cosigners) == {"w.example/1"}
    with pytest.raises(NoteError, match="policy needs 2"):
        open_checkpoint(note, log.verifier(), witnesses=[w1.verifier(), w2.verifier()], quorum=2)


def test_verifier_rules() -> None:
    log, other = signer(), signer("other.example/log")
    note = sign_note("hello\n", [log])
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(note, [other.verifier()])
    # A known (name, id) whose signature fails rejects the whole note, even with a good one.
    parsed = parse_note(note)
    forged = (
        parsed.text
        + "\n"
        + parsed.signatures[0].line()
        + parsed.signatures[0].line().replace(parsed.signatures[0].line()[-12:-1], "AAAAAAAAAAA")
    )
    with pytest.raises(NoteError):
        open_note(forged, [log.verifier()])
    for malformed in (
        "no blank line\n— a b\n",
        "text\n\n",
        "text\n\nnot a signature\n",
        "text\n\n— name !!!!\n",
        "a\x01\n\n— x AAAAAAAA\n",
    ):
        with pytest.raises(NoteError):
            parse_note(malformed)
    with pytest.raises(NoteError):
        sign_note("no final newline", [log])


@pytest.mark.parametrize(
    "text",
    [
        "origin\n012\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  # leading zero
        "origin\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n12\nAAAA\n",  # not 32 bytes
        "origin\n12\n",  # no root
        "origin\n12\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nextension\n",  # empty line
    ],
)
def test_checkpoint_parse_is_strict(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_checkpoint_origin_must_match() -> None:
    log = signer("log.example/a")
    note = sign_checkpoint(Checkpoint("log.example/b", 0, merkle.EMPTY_ROOT), log)
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(note, log.verifier())


def test_receipt_round_trip_and_tampering() -> None:
    log, w = signer(), cosigner()
    data = [f"entry {i}".encode() for i in range(11)]
    tree = merkle.MemoryTree()
    for d in data:
        tree.append(d)
    note = sign_note(Checkpoint(log.name, 11, tree.root()).text(), [log, w])
    receipt = Receipt(7, tuple(tree.inclusion_proof(7)), note, extra=b"context").format()
    assert receipt.startswith("c2sp.org/tlog-proof@v1\nextra Y29udGV4dA==\nindex 7\n")
    parsed = Receipt.parse(receipt)
    assert parsed.format() == receipt and parsed.extra == b"context"
    opened = verify_receipt(receipt, data[7], log.verifier(), witnesses=[w.verifier()], quorum=1)
    assert opened.size == 11
    with pytest.raises(merkle.ProofError):
        verify_receipt(receipt, data[6], log.verifier())
    with pytest.raises(merkle.ProofError):
        verify_receipt(receipt.replace("index 7", "index 6"), data[7], log.verifier())
    with pytest.raises(NoteError):
        verify_receipt(receipt, data[7], signer().verifier())
    with pytest.raises(NoteError):
        verify_receipt(receipt, data[7], log.verifier(), witnesses=[cosigner("w.example/x").verifier()], quorum=1)
    plain = Receipt(0, tuple(tree.inclusion_proof(0)), note).format()
    assert plain.split("\n")[1] == "index 0"
    verify_receipt(plain, data[0], log.verifier())
