"""Key custody, from the facts: where the key material lives and who can use it.

A hop's keys are described by three facts: `data_state.at_rest.encryption` (where the key
material lives), `keys.provider_can_decrypt` (whether the operator can use it) and
`keys.custodian` (who is said to hold it). The custodian is a label; the first two are
what a court order or an administrator can act on. So a verdict on custody follows from
where the key material lives and who can use it, and the label only ever lowers it:

- `provider_managed`, `cmk_in_provider_kms` and `none` put the key (or the plaintext) in
  the provider's hands, whoever "manages" it: a customer-managed key in the provider's
  KMS is still created, stored and used inside the provider (BSI C3A SOV-3-02 asks for
  the opposite);
- `external_kms_byok`, `hyok` and `client_side` keep the key material outside the
  provider; with `hyok` and `client_side` the provider never gets to use it;
- a custodian inside the operator's group holds the key, whatever else is said, and a
  key is only known to be outside when the custodian is known to be outside that group.

Facts that cannot all be true (a key in the provider's KMS that the provider cannot
use; hold-your-own-key that the provider can decrypt; a provider-managed key held by
someone outside the provider) are a contradiction: the loader refuses the file and names
both facts, and the analysis never turns one into a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from souverain.sovereignty.facts import SELF, FactRef, Trace, control_chain, describe

IN_PROVIDER = frozenset({"none", "provider_managed", "cmk_in_provider_kms"})
OUTSIDE = frozenset({"external_kms_byok", "hyok", "client_side"})
NEVER_USED_BY_PROVIDER = frozenset({"hyok", "client_side"})

Tri = Literal["yes", "no", "unknown"]
Where = Literal["provider", "outside", "unknown"]


@dataclass(frozen=True)
class Conflict:
    """Two facts of one hop that cannot both be true."""

    first: FactRef
    second: FactRef
    why: str


@dataclass(frozen=True)
class Custody:
    key_material: Where  # where the key material lives
    provider_can_use: Tri  # can the operator (or its group) use the key
    holder_in_group: Tri  # is the stated custodian the operator or one of its parents
    reasons: tuple[str, ...]
    conflicts: tuple[Conflict, ...] = ()


def hop_custody(trace: Trace, hop: str) -> Custody:
    """Custody of one hop's keys, read from its facts (and its operator's control chain).

    On a hop the organisation runs itself (or no one runs) the "provider" is the
    organisation: nothing there can contradict, and no provider's group holds a key."""
    operator = trace.hop(hop, "operator")
    own = operator.usable and operator.value in (None, SELF)
    encryption = trace.hop(hop, "data_state.at_rest.encryption")
    decrypt = trace.hop(hop, "keys.provider_can_decrypt")
    custodian = trace.hop(hop, "keys.custodian")
    enc = encryption.value if encryption.usable else None
    can = decrypt.value if decrypt.usable else None
    in_group: Tri = "unknown"
    if own:
        in_group = "no"
    elif custodian.usable and operator.usable:
        group, complete = control_chain(trace, operator.value)
        in_group = "yes" if custodian.value in group else "no" if complete or custodian.value is None else "unknown"
    conflicts: list[Conflict] = []

    def clash(first: FactRef, second: FactRef, why: str) -> None:
        if not own:
            conflicts.append(Conflict(first, second, why))

    if enc in IN_PROVIDER and can is False:
        clash(
            encryption,
            decrypt,
            f"`{enc}` leaves the key (or the plaintext) with the provider, which can therefore use it",
        )
    if enc in NEVER_USED_BY_PROVIDER and can is True:
        clash(encryption, decrypt, f"with `{enc}` the provider never holds a key it could decrypt with")
    if enc in OUTSIDE and in_group == "yes":
        clash(
            encryption,
            custodian,
            f"`{enc}` keeps the key material outside the provider, but the custodian is the provider or its group",
        )
    if enc == "provider_managed" and in_group == "no":
        clash(encryption, custodian, "a provider-managed key is held by the provider, not by someone outside its group")
    if can is False and in_group == "yes":
        clash(custodian, decrypt, "a provider that holds the key can use it")

    if enc in IN_PROVIDER or in_group == "yes":
        where: Where = "provider"
    elif (enc in OUTSIDE or can is False) and in_group == "no":
        where = "outside"  # and known not to be held by the provider's group
    else:
        where = "unknown"
    if can is not None:
        use: Tri = "yes" if can else "no"
    elif enc in IN_PROVIDER or in_group == "yes":
        use = "yes"
    elif enc in NEVER_USED_BY_PROVIDER:
        use = "no"
    else:
        use = "unknown"
    reasons = tuple(describe(ref) for ref in (encryption, decrypt, custodian))
    return Custody(where, use, in_group, reasons, tuple(conflicts))


def conflict_text(conflict: Conflict) -> str:
    return f"{describe(conflict.first)} contradicts {describe(conflict.second)}: {conflict.why}"
