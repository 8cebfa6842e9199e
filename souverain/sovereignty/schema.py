"""The pipes file's schema (`souverain.pipes/v1`), as typed structs.

A pipes file declares **entities** (legal persons), **hops** (one node of a deployment
route: who runs what, on whose infrastructure, with which keys, where) and **routes**
(the chain of hops that reaches a model, and what it is used for). The shipped catalogue
uses the same schema, and a user's file is merged onto it.

Every leaf of an entity or a hop is a *fact*. A fact is written in one of three ways:

    incorporated_in: FR                       # asserted, or backed by the object's `evidence`
    incorporated_in: unknown                  # explicitly not known
    incorporated_in: {value: FR, evidence: [ev-rcs], confidence: verified, note: "..."}

A fact that is missing, `unknown`, or `unverified` is *unknown* to the analyser, and
unknown never passes a criterion. Defaults are `UNSET` so that the loader can tell "not
said" from "said", which is what overriding the catalogue needs.

Nested objects (`hq`, `location`, `contract`, ...) are plain groups of facts; lists
(`subprocessors`, `processing_countries`, `telemetry`, ...) are one fact each.
"""

from typing import Annotated, Any, Generic, Literal, TypeVar, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType

from souverain.strict import Strict as Base
from souverain.terms import LevelName

T = TypeVar("T")

SCHEMA_ID = "souverain.pipes/v1"

Confidence = Literal["verified", "secondary", "asserted", "unverified"]
# Lowest to highest. `unverified` never counts; `asserted` is a statement without a source.
CONFIDENCE_RANK = {"unverified": 0, "asserted": 1, "secondary": 2, "verified": 3}

Id = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._/-]*$", max_length=128)]
# ISO 3166-1 alpha-2, or EU ("somewhere in the EU"), or ANY ("anywhere in the world").
# The loader checks the code against the ISO list; `unknown` is the unknown fact.
Country = Annotated[str, Meta(pattern=r"^([A-Z]{2}|EU|ANY|unknown)$")]
Pct = Annotated[float, Meta(ge=0, le=100)]
Days = Annotated[int, Meta(ge=0)]
Unknown = Literal["unknown"]

ServiceClass = Literal["ECS", "RCS", "ECSP"]
Role = Literal[
    "client_app", "api_gateway", "model_inference", "model_weights_source", "vector_store",
    "object_storage", "key_management", "logging_sink", "abuse_monitoring", "support_access",
    "telemetry", "cdn_edge", "idp", "billing", "facility", "compute", "network",
]  # fmt: skip
DataKind = Literal[
    "prompt", "completion", "files", "embeddings", "content_logs", "metadata_logs", "account_data", "telemetry"
]
InUse = Literal["plaintext", "tee_attested", "none", "unknown"]
Encryption = Literal[
    "none", "provider_managed", "cmk_in_provider_kms", "external_kms_byok", "hyok", "client_side", "unknown"
]
Scope = Literal["region", "data_zone_eu", "geography_eu", "global", "unknown"]
TransferMechanism = Literal["scc_2021_914", "dpf", "bcr", "adequacy", "art49"]
IctService = Literal[
    "S01", "S02", "S03", "S04", "S05", "S06", "S07", "S08", "S09", "S10",
    "S11", "S12", "S13", "S14", "S15", "S16", "S17", "S18", "S19", "unknown",
]  # fmt: skip
Reliance = Literal["not_significant", "low", "material", "full", "unknown"]


class Stated(Base, Generic[T]):
    """A fact with its evidence: ids from the file's `evidence:` table."""

    value: T
    evidence: list[Id] = []
    confidence: Confidence | None = None
    note: str = ""


def _fact(t: Any, *, str_like: bool = False) -> Any:
    """The type of a fact holding a `t`. Built at run time, hence `Union`."""
    inner = t if str_like else Union[t, Unknown]  # noqa: UP007
    return Union[inner, Stated[inner]]  # noqa: UP007


FStr = _fact(str, str_like=True)
FCountry = _fact(Country, str_like=True)
FBool = _fact(bool)
FDays = _fact(Days)
FPct = _fact(Pct)
FNum = _fact(Annotated[float, Meta(ge=0)])
FCountries = _fact(list[Country])
FEntity = _fact(Id | None, str_like=True)  # null: no such entity (e.g. no parent)
FHop = _fact(Id | None, str_like=True)  # null: runs on nothing else
FEntities = _fact(list[Id])
FHops = _fact(list[Id])


class Evidence(Base):
    """A source, cited by id from any fact."""

    source: str  # a URL or a document reference
    retrieved: str  # ISO date the source was read (or, for research notes, recorded)
    confidence: Confidence = "secondary"
    title: str = ""
    published: str = ""
    kind: Literal[
        "statute",
        "official",
        "vendor_doc",
        "contract",
        "registry",
        "press",
        "community",
        "own_config",
        "audit",
        "research_note",
    ] = "vendor_doc"
    via: str = ""  # where we found it, if not first-hand
    sha256: str = ""
    note: str = ""


# ---- entities -------------------------------------------------------------------------


class Ids(Base):
    lei: FStr = UNSET
    euid: FStr = UNSET
    vat: FStr = UNSET
    national: FStr = UNSET


class Hq(Base):
    """SecNumCloud § 19.6 a): all three must be in an EU Member State."""

    registered_office: FCountry = UNSET
    central_administration: FCountry = UNSET
    principal_establishment: FCountry = UNSET


class Shareholding(Base):
    """Non-EU holders of capital and voting rights (SecNumCloud § 19.6 b): ≤ 24 % / ≤ 39 %)."""

    max_individual_pct: FPct = UNSET
    collective_pct: FPct = UNSET
    veto_rights: FBool = UNSET
    appoints_board_majority: FBool = UNSET


class Presence(Base):
    """Where the entity or its group is present: the "minimum contacts" of non-EU laws."""

    subsidiaries_in: FCountries = UNSET
    offices_in: FCountries = UNSET
    targets_customers_in: FCountries = UNSET


class GovRequests(Base):
    notify_customer: _fact(Literal["always", "best_effort", "never"]) = UNSET
    challenge: FBool = UNSET
    transparency_report: FBool = UNSET


class Certification(Base):
    scheme: str  # e.g. SecNumCloud, BSI-C5, ISO27001
    version: str = ""
    status: Literal["qualified", "certified", "attested", "in_progress", "expired"] = "certified"
    scope: str = ""
    valid_until: str = ""


class Entity(Base):
    name: str = ""  # short display name
    legal_name: FStr = UNSET
    ids: Ids = msgspec.field(default_factory=Ids)
    person_type: _fact(Literal["legal", "individual"]) = UNSET
    incorporated_in: FCountry = UNSET
    hq: Hq = msgspec.field(default_factory=Hq)
    # Controlling parents, direct first; [] means no parent (the entity is its own ultimate parent).
    parent_chain: FEntities = UNSET
    # When only the top of the chain is known; null means the entity is its own ultimate parent.
    ultimate_parent: FEntity = UNSET
    non_eu_shareholding: Shareholding = msgspec.field(default_factory=Shareholding)
    foreign_presence: Presence = msgspec.field(default_factory=Presence)
    # Service class under US law (18 U.S.C. § 2510(15) ECS, § 2711(2) RCS; 50 U.S.C. § 1881(b)(4) ECSP).
    service_class: _fact(list[ServiceClass]) = UNSET
    dora_ctpp: FBool = UNSET
    dpf_certified: FBool = UNSET
    gov_links: FBool = UNSET
    gov_requests: GovRequests = msgspec.field(default_factory=GovRequests)
    certifications: _fact(list[Certification]) = UNSET
    evidence: list[Id] = []  # default evidence for this entity's facts
    confidence: Confidence | None = None
    note: str = ""


# ---- hops -----------------------------------------------------------------------------


class Model(Base):
    id: FStr = UNSET
    provider: FEntity = UNSET
    weights_origin: FCountry = UNSET
    license: FStr = UNSET
    open_weights: FBool = UNSET


class AtRest(Base):
    stored: FBool = UNSET
    retention_days: FDays = UNSET
    encryption: _fact(Encryption, str_like=True) = UNSET


class DataState(Base):
    in_use: _fact(InUse, str_like=True) = UNSET
    at_rest: AtRest = msgspec.field(default_factory=AtRest)


class Keys(Base):
    custodian: FEntity = UNSET
    hsm_country: FCountry = UNSET
    provider_can_decrypt: FBool = UNSET


class Location(Base):
    processing_scope: _fact(Scope, str_like=True) = UNSET
    processing_countries: FCountries = UNSET
    storage_countries: FCountries = UNSET
    non_eu_fallback: FBool = UNSET
    fallback_countries: FCountries = UNSET


class Access(Base):
    admin_access_from: FCountries = UNSET
    support_access_from: FCountries = UNSET
    support_staff_citizenship: FCountries = UNSET
    support_operations_documented: FBool = UNSET  # SecNumCloud § 19.2 e)
    customer_approval_required: FBool = UNSET
    access_logs_to_customer: FBool = UNSET


class Contract(Base):
    reference: FStr = UNSET
    governing_law: FCountry = UNSET
    dispute_forum: FCountry = UNSET
    dpa_art28: FBool = UNSET
    transfer_mechanisms: _fact(list[TransferMechanism]) = UNSET
    location_change_notice: FBool = UNSET  # DORA Art. 30(2)(b)
    control_change_notice_days: FDays = UNSET  # C3A SOV-1-04
    incident_notice_hours: FDays = UNSET
    subcontracting_allowed: FBool = UNSET
    ict_service_type: _fact(IctService, str_like=True) = UNSET  # DORA ITS Annex III
    start_date: FStr = UNSET
    end_date: FStr = UNSET
    notice_days_entity: FDays = UNSET
    notice_days_provider: FDays = UNSET
    annual_cost: FNum = UNSET
    currency: FStr = UNSET
    reliance: _fact(Reliance, str_like=True) = UNSET


class TelemetryFlow(Base):
    """A flow of data out of a hop (telemetry, logs, samples): its recipient is a party of
    the route (see flows.py)."""

    name: str
    enabled: bool | Unknown = "unknown"
    destination: Id | None = None  # the recipient entity (null: not stated)
    to: Id | None = None  # the declared hop that receives it (then its facts say where and who)
    countries: list[Country] | Unknown = "unknown"
    content: Literal["none", "metadata", "content", "unknown"] = "unknown"


class Hop(Base):
    title: str = ""
    role: Role | UnsetType = UNSET  # required once the catalogue and the file are merged
    operator: FEntity = UNSET
    contracting_entity: FEntity = UNSET
    runs_on: FHop = UNSET
    subprocessors: FHops = UNSET
    service_class: _fact(list[ServiceClass]) = UNSET  # overrides the operator's, service by service
    model: Model = msgspec.field(default_factory=Model)
    deployment: FStr = UNSET  # SKU, inference profile, region: what decides residency
    data_classes: _fact(list[DataKind]) = UNSET  # omitted: those of the hop it serves
    data_state: DataState = msgspec.field(default_factory=DataState)
    keys: Keys = msgspec.field(default_factory=Keys)
    location: Location = msgspec.field(default_factory=Location)
    access: Access = msgspec.field(default_factory=Access)
    contract: Contract = msgspec.field(default_factory=Contract)
    telemetry: _fact(list[TelemetryFlow]) = UNSET
    # Certifications whose scope covers this hop's service, as "scheme/version".
    certified: _fact(list[str]) = UNSET
    hardware_origin: FCountries = UNSET  # accelerators (CSF SOV-3 Q5)
    export_controls: _fact(list[str]) = UNSET
    evidence: list[Id] = []
    confidence: Confidence | None = None
    note: str = ""


# ---- routes ---------------------------------------------------------------------------

Tristate = bool | Unknown


class Endpoint(Base):
    url: str = ""
    model: str = ""
    deployment: str = ""


class AiAct(Base):
    role: Literal["deployer", "provider", "unknown"] = "deployer"
    high_risk: Tristate = "unknown"


class Purpose(Base):
    name: str = ""
    function_id: str = ""  # DORA B_06.01 function id (F1, F2, ...)
    dora_cif: Tristate = "unknown"
    personal_data: Tristate = "unknown"
    special_categories: Tristate = "unknown"
    data_sensitivity: Literal["low", "medium", "high", "unknown"] = "unknown"
    data_subjects: list[str] = []
    lawful_basis: str = ""
    ai_act: AiAct = msgspec.field(default_factory=AiAct)


class Regimes(Base):
    gdpr: bool = True
    dora: bool = False
    ai_act: bool = True


class Requirements(Base):
    """What `souverain pipes check` enforces. Unset keys do not constrain; a route's own
    `requires` replaces the file's `requirements` key by key."""

    min_level: LevelName | None = None
    criteria: list[str] | None = None  # criterion ids that must pass (not_applicable counts as met)
    min_csf_seal: Annotated[int, Meta(ge=0, le=4)] | None = None
    no_non_eu_access: bool | None = None  # true: no non-EU law may reach plaintext, even contested
    min_confidence: Literal["asserted", "secondary", "verified"] | None = None


class Route(Base):
    template: Id | None = None  # a catalogue template: its hops follow this route's own
    title: str = ""
    description: str = ""
    endpoint: Endpoint = msgspec.field(default_factory=Endpoint)
    hops: list[Id] = []
    purpose: Purpose = msgspec.field(default_factory=Purpose)
    regimes: Regimes = msgspec.field(default_factory=Regimes)
    requires: Requirements | None = None


class PipesFile(Base):
    version: Literal[1] = 1
    requirements: Requirements = msgspec.field(default_factory=Requirements)
    evidence: dict[Id, Evidence] = {}
    entities: dict[Id, Entity] = {}
    hops: dict[Id, Hop] = {}
    templates: dict[Id, Route] = {}
    routes: dict[Id, Route] = {}


# Keys of an entity or hop that describe the object rather than state a fact.
META_KEYS = frozenset({"evidence", "confidence", "note", "name", "title", "role"})
