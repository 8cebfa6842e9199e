"""The ledger with its keys in an HSM (SoftHSM2 through PKCS#11): checkpoints signed on the
token, keys that cannot leave it, and shredding that destroys the token object."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ledger_fixtures import entry

from souverain.keys import Pkcs11Keys
from souverain.keys.pkcs11 import Pkcs11KeyProvider
from souverain.ledger import Ledger, LedgerConfig, RetentionConfig, SqliteStoreConfig, open_checkpoint, verify_receipt


def token_objects(module: str, label: str, pin: str, name: str) -> list[dict[str, Any]]:
    """What the token holds under `name`, read through a session of our own."""
    import PyKCS11 as P

    provider = Pkcs11KeyProvider(module, label, pin)
    try:
        session = provider._session
        out = []
        for obj in session.findObjects([(P.CKA_LABEL, name)]):
            (cls,) = session.getAttributeValue(obj, [P.CKA_CLASS])
            info = {"class": cls}
            if cls in (P.CKO_PRIVATE_KEY, P.CKO_SECRET_KEY):
                sensitive, extractable = session.getAttributeValue(obj, [P.CKA_SENSITIVE, P.CKA_EXTRACTABLE])
                info.update(sensitive=bool(sensitive), extractable=bool(extractable))
            out.append(info)
        return out
    finally:
        provider.close()


def test_ledger_on_an_hsm(tmp_path: Path, softhsm: tuple[str, str, str]) -> None:  # noqa: F811
    import PyKCS11 as P

    module, label, pin = softhsm
    config = LedgerConfig(
        signing_key="ledger-hsm-test",
        store=SqliteStoreConfig(path=str(tmp_path / "ledger.db")),
        keys=Pkcs11Keys(module=module, token_label=label, pin=pin),
        retention=RetentionConfig(content=True),
    )

    async def go() -> tuple[Ledger, str]:
        ledger = Ledger.open(config, state_dir=tmp_path)
        indexes = await asyncio.gather(
            *(ledger.append(entry(i, tenant="hospital"), request=b"diagnosis?", response=b"flu") for i in range(50))
        )
        await ledger.integrate()
        open_checkpoint(await ledger.checkpoint(), ledger.verifier)  # signed on the token
        data = (await ledger.entries(indexes[7], indexes[7] + 1))[0][1]
        verify_receipt(await ledger.receipt(indexes[7]), data, ledger.verifier)
        assert await ledger.content(indexes[7]) == (b"diagnosis?", b"flu")
        kek = ledger.keyring.get(ledger._reader().store, "hospital", create=False).kek  # type: ignore[union-attr]
        assert [o["class"] for o in token_objects(module, label, pin, kek)] == [P.CKO_SECRET_KEY]
        report = await ledger.shred("hospital")
        assert report.destroyed_keys == [kek]
        await ledger.stop()
        return ledger, kek

    ledger, kek = asyncio.run(go())
    # The checkpoint key lives on the token, private half sensitive and non-extractable.
    objects = token_objects(module, label, pin, "ledger-hsm-test")
    private = [o for o in objects if o["class"] == P.CKO_PRIVATE_KEY]
    assert len(private) == 1 and private[0]["sensitive"] and not private[0]["extractable"]
    # The tenant's wrapping key was on the token, and is destroyed there.
    assert token_objects(module, label, pin, kek) == []
    # Reopening finds the same key: checkpoints keep verifying under the published vkey.
    again = Ledger.open(config, state_dir=tmp_path)
    assert again.vkey == ledger.vkey

    async def check() -> None:
        open_checkpoint(await again.checkpoint(), ledger.verifier)
        await again.stop()

    asyncio.run(check())
