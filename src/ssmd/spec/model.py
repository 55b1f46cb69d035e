"""The environment definition as typed values (DESIGN §4).

YAML keys are the field names (snake_case) except `apiVersion`. Durations are int
nanoseconds and sizes int bytes in the model; YAML spells them "7d" and "10GiB"
(`ssmd.spec.units`). Field constraints and descriptions live in `Annotated` metadata:
the loader checks them with positions, and `ssmd env schema` publishes them to editors.
Every Struct omits defaults when encoded, so the canonical JSON of a definition does not
change when someone spells out a default.
"""

from __future__ import annotations

import datetime as dt
import typing
from typing import Annotated, Any, Literal

import msgspec

from ssmd.model.records import InstrumentKind
from ssmd.spec import units

API_VERSION = "ssmd/v1"
KIND = "Environment"

RecordType = Literal["trade", "quote", "book", "status", "gap", "instrument"]
Scope = Literal["admin", "operator", "read", "stream", "feedback"]
ClientType = Literal["display", "non-display", "trading"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Component = Literal["gateway", "worker", "shipper", "agents", "bridges", "tui"]
JobKind = Literal["reprocess", "ship", "retention", "quality", "secmaster-sync", "export"]
CheckKind = Literal["staleness", "gap_rate", "crossed_book", "sequence_gaps", "spread"]


def doc(tp: Any, description: str, **meta: Any) -> Any:
    """A type with a description and optional msgspec constraints (ge, le, pattern…)."""
    extra = meta.pop("extra", None)
    args = typing.get_args(tp)
    if meta and type(None) in args and len(args) == 2:
        (inner,) = (a for a in args if a is not type(None))
        tp = Annotated[inner, msgspec.Meta(**meta)] | None
        meta = {}
    return Annotated[tp, msgspec.Meta(description=description, extra=extra, **meta)]


def duration(description: str, *, forever: bool = False, le: int | None = None) -> Any:
    """Int nanoseconds in the model; "90s", "7d" in YAML ("forever" = 0 where allowed)."""
    extra = {"unit": "duration", "forever": forever}
    schema = {"x-unit": "duration", "x-forever": forever}
    return Annotated[
        int,
        msgspec.Meta(description=description, ge=0, le=le, extra=extra, extra_json_schema=schema),
    ]


def size(description: str) -> Any:
    """Int bytes in the model; "512MiB", "10GB" or a bare byte count in YAML."""
    return Annotated[
        int,
        msgspec.Meta(
            description=description,
            ge=0,
            extra={"unit": "size"},
            extra_json_schema={"x-unit": "size"},
        ),
    ]


def secret(description: str) -> Any:
    """A reference to a secret (env:NAME, file:/abs/path, k8s:secret/key), never the secret."""
    return Annotated[
        str,
        msgspec.Meta(
            description=description,
            extra={"secret": True},
            extra_json_schema={"pattern": SECRET_REF_PATTERN},
        ),
    ]


SECRET_REF_PATTERN = (
    r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|k8s:[a-z0-9][-a-z0-9.]*/[-._a-zA-Z0-9]+)$"
)
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
NAME_HINT = "names are lowercase letters, digits, '-' and '_' (they become NATS subject tokens)"
Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, extra={"hint": NAME_HINT})]
ENV_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
CLIENT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
K8S_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"


class Spec(
    msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True, frozen=True
):
    """Base: keyword-only, immutable, strict about unknown keys, defaults left out of encodings."""


class Metadata(Spec):
    """Who this environment is; per-environment (never promoted)."""

    name: doc(
        str,
        "Environment name: NATS subjects md.{env}.…, stream names MD_{ENV}_…, KV ssmd_{env}.",
        pattern=ENV_NAME_PATTERN,
        extra={"hint": "lowercase letters, digits and '-', starting with a letter, ≤ 31 chars"},
    )
    description: doc(str, "Free text shown by `ssmd env show`.") = ""
    owner: doc(str, "Team or person answerable for this environment.") = ""
    labels: doc(dict[str, str], "Free-form key/value labels, copied to manifests.") = {}


class Selector(Spec):
    """Instruments chosen from the secmaster instead of listed (resolved at apply time)."""

    kinds: doc(list[InstrumentKind], "Instrument kinds; empty = any.") = []
    base: doc(list[str], "Base assets, e.g. [BTC, ETH]; empty = any.") = []
    quote: doc(list[str], "Quote assets, e.g. [USD, USDT]; empty = any.") = []
    symbols: doc(list[str], "Globs on the normalized symbol, e.g. ['BTC-*']; empty = any.") = []
    status: doc(Literal["open", "any"], "Only open instruments, or any status.") = "open"
    limit: doc(
        int | None,
        "Upper bound on how many instruments the selector may resolve to; the shard check "
        "uses it (a selector without a limit cannot be checked before apply).",
        ge=1,
    ) = None


class Feed(Spec):
    """One capture configuration: one venue protocol, its channels and instruments."""

    venue: doc(str, "Venue protocol id from the registry (`ssmd venue list`), e.g. kraken-v2.")
    enabled: doc(bool, "Disabled feeds stay in the definition but run no connector.") = True
    channels: doc(list[str], "Venue channels to subscribe; empty = every channel.") = []
    instruments: doc(list[str], "Explicit venue symbols, e.g. 'BTC/USD' on kraken-v2.") = []
    select: doc(Selector | None, "Secmaster selector, instead of `instruments`.") = None
    depth: doc(int, "Book depth to subscribe and keep; 0 = the venue's full depth.", ge=0) = 10
    shards: doc(
        int,
        "Connector processes; each holds at most max_instruments_per_connection instruments.",
        ge=1,
        le=1024,
    ) = 1
    max_instruments_per_connection: doc(
        int | None, "Instruments per connection; default and ceiling = the venue's limit.", ge=1
    ) = None


class Journal(Spec):
    """The local raw journal (DESIGN §7)."""

    dir: doc(str, "Journal root; empty = {data_dir}/raw.") = ""
    rotate_every: duration("Close the segment after this long.") = units.H
    rotate_size: size("…or once it holds this many compressed bytes.") = 256 * 2**20
    flush_every: duration("zstd frame flush interval (a crash loses at most this).", le=units.S) = (
        units.S
    )
    compression_level: doc(int, "zstd level.", ge=1, le=22) = 3


class Credentials(Spec):
    """S3 credentials, as secret references."""

    access_key_id: secret("Access key id reference, e.g. env:AWS_ACCESS_KEY_ID.")
    secret_access_key: secret("Secret access key reference, e.g. k8s:ssmd-s3/secret-key.")


class ObjectStore(Spec):
    """Where closed segments and Parquet go."""

    url: doc(
        str, "'' = local files under {data_dir}/objects; file:///abs/path; s3://bucket/prefix."
    ) = ""
    endpoint: doc(str, "S3-compatible endpoint URL (MinIO, R2…); empty = AWS.") = ""
    region: doc(str, "S3 region.") = ""
    credentials: doc(Credentials | None, "S3 credentials; none = ambient (IAM role).") = None


class Retention(Spec):
    """How long each tier keeps data; 0 or "forever" keeps it forever.

    Ordered: journal ≤ raw and normalized ≤ raw — raw is the truth, nothing derived from it
    or staged before it may outlive it.
    """

    journal: duration("Local raw segments, after verified shipping.", forever=True) = 2 * units.D
    raw: duration("Raw segments in the object store.", forever=True) = 0
    normalized: duration("Parquet in the object store.", forever=True) = 0


class Storage(Spec):
    """Local block storage, object store and retention; per-environment (never promoted)."""

    data_dir: doc(str, "Root of local data (journal, local object store).") = "./data"
    journal: Journal = Journal()
    object_store: ObjectStore = ObjectStore()
    retention: Retention = Retention()


class Streams(Spec):
    """JetStream limits applied to every MD_{ENV}_{FEED} stream."""

    max_age: duration("Discard messages older than this; 0 = no age limit.") = units.D
    max_bytes: size("Per-stream size cap; 0 = no size limit.") = 10 * 2**30
    replicas: doc(
        int,
        "Stream replicas (1 on one node, 3 in a cluster); per-environment.",
        ge=1,
        le=5,
        extra={"hint": "JetStream supports 1 to 5 replicas"},
    ) = 1
    dedup_window: duration("Nats-Msg-Id duplicate window (≤ max_age).") = 2 * units.M
    storage: doc(Literal["file", "memory"], "JetStream storage type.") = "file"
    discard: doc(Literal["old", "new"], "What to drop when a limit is reached.") = "old"


class Entitlement(Spec):
    """What a client may see: all conditions must hold."""

    feeds: doc(list[str], "Feed names, or '*' for every feed.", min_length=1)
    symbols: doc(list[str], "Globs on the normalized symbol.", min_length=1) = msgspec.field(
        default_factory=lambda: ["*"]
    )
    types: doc(list[RecordType], "Record types; empty = all.") = []
    start: doc(dt.date | None, "History window start date (UTC, inclusive).") = None
    end: doc(dt.date | None, "History window end date (UTC, inclusive).") = None
    lookback: duration("Rolling history window; 0 = unlimited.") = 0
    expires: doc(dt.date | None, "The entitlement ends at 00:00 UTC on this date.") = None


class Client(Spec):
    """A consumer identity; API keys live in Postgres (`ssmd key`), not here."""

    id: doc(
        str,
        "Client id (API keys `ssmd key create --client ID` belong to it).",
        pattern=CLIENT_ID_PATTERN,
        extra={"hint": "lowercase letters, digits and '-', starting with a letter or digit"},
    )
    type: doc(ClientType, "Exchange licensing class of the usage.")
    description: doc(str, "Who or what this is.") = ""
    scopes: doc(list[Scope], "What the client may do.") = msgspec.field(
        default_factory=lambda: ["read"]
    )
    entitlements: doc(list[Entitlement], "What data it may see.") = []
    transforms: doc(list[str], "Transforms applied to its streams, in order.") = []
    revoked: doc(bool, "Revoked clients are kept for the record; the gateway refuses them.") = False


class Transform(Spec):
    """A Lua function the gateway applies to records for the clients that name it."""

    language: doc(Literal["lua"], "Only Lua for now.") = "lua"
    source: doc(str, "Inline Lua source.") = ""
    file: doc(str, "Lua file, relative to the environment file.") = ""
    description: doc(str, "What it does.") = ""


class Calendar(Spec):
    """When a market trades; schedules use it to skip closed days."""

    timezone: doc(str, "IANA time zone, e.g. America/New_York.") = "UTC"
    weekdays: doc(list[Weekday], "Trading days.") = msgspec.field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"]
    )
    open: doc(str, "Session open, HH:MM local.", pattern=HHMM) = "00:00"
    close: doc(str, "Session close, HH:MM local (24:00 = midnight).", pattern=HHMM) = "24:00"
    holidays: doc(list[dt.date], "Closed dates.") = []


class Schedule(Spec):
    """A recurring job (Temporal schedule)."""

    job: doc(JobKind, "What runs.")
    cron: doc(str, "Five-field cron: minute hour day-of-month month day-of-week.")
    timezone: doc(str, "IANA time zone the cron is read in.") = "UTC"
    calendar: doc(str, "Calendar name; the job runs only on its trading days.") = ""
    feeds: doc(list[str], "Feeds it works on; empty = all.") = []
    enabled: doc(bool, "Paused schedules stay defined.") = True
    args: doc(dict[str, str], "Job-specific arguments.") = {}


class QualityCheck(Spec):
    """One data-quality rule; parameters depend on `kind`."""

    kind: doc(CheckKind, "What is measured.")
    feeds: doc(list[str], "Feeds checked; empty = all.") = []
    symbols: doc(list[str], "Globs on the normalized symbol.") = msgspec.field(
        default_factory=lambda: ["*"]
    )
    max_silence: duration("staleness: longest acceptable silence per symbol.") = 0
    max_per_hour: doc(int | None, "gap_rate, sequence_gaps, crossed_book: budget.", ge=0) = None
    max_spread_bps: doc(int | None, "spread: widest acceptable spread, basis points.", ge=1) = None
    severity: doc(Literal["warn", "error"], "error also files an issue if enabled.") = "warn"


class Quality(Spec):
    """Declarative data-quality checks."""

    checks: doc(dict[Name, QualityCheck], "Checks by name.") = {}
    open_issues: doc(bool, "File an issue in the tracker on error-severity failures.") = False


class IssueTracker(Spec):
    """Where feedback and quality failures become issues."""

    kind: doc(Literal["linear", "github"], "Tracker product.")
    api_key: secret("API key reference, e.g. env:LINEAR_API_KEY.")
    team: doc(str, "Linear team key or GitHub owner/repo.") = ""
    labels: doc(list[str], "Labels put on every issue.") = []


class Bridge(Spec):
    """Republish normalized records on a low-latency transport."""

    kind: doc(Literal["aeron", "chronicle"], "Transport.")
    feeds: doc(list[str], "Feeds bridged ('*' = all).", min_length=1)
    types: doc(list[RecordType], "Record types; empty = all.") = []
    channel: doc(str, "aeron: channel URI, e.g. aeron:udp?endpoint=239.1.1.1:40123.") = ""
    stream_id: doc(int, "aeron: stream id.", ge=1) = 1001
    path: doc(str, "chronicle: queue directory.") = ""


class Integrations(Spec):
    """External systems; per-environment (never promoted)."""

    issue_tracker: doc(IssueTracker | None, "Issue tracker, e.g. Linear.") = None
    bridges: doc(dict[Name, Bridge], "Bridges by name.") = {}


class Quantities(Spec):
    """Kubernetes CPU / memory quantities."""

    cpu: doc(str, "e.g. 500m, 2.", pattern=K8S_QUANTITY) = ""
    memory: doc(str, "e.g. 512Mi, 4Gi.", pattern=K8S_QUANTITY) = ""


class Resources(Spec):
    """Kubernetes requests and limits for one service."""

    requests: Quantities = Quantities()
    limits: Quantities = Quantities()


class GitOps(Spec):
    """Where rendered manifests are committed for ArgoCD."""

    repo: doc(str, "Git URL of the GitOps repository.")
    branch: doc(str, "Branch ArgoCD watches.") = "main"
    path: doc(str, "Directory for this environment's manifests; empty = envs/{name}.") = ""
    credentials: secret("Secret reference for push access (token or SSH key).") = ""


class Deploy(Spec):
    """Kubernetes deployment; per-environment (never promoted)."""

    namespace: doc(str, "Kubernetes namespace.", pattern=DNS_LABEL) = "ssmd"
    image: doc(str, "The one image every service runs.") = "ghcr.io/ssmd/ssmd:0.1.0"
    image_pull_policy: doc(Literal["Always", "IfNotPresent", "Never"], "Pull policy.") = (
        "IfNotPresent"
    )
    replicas: doc(dict[Component, Annotated[int, msgspec.Meta(ge=0, le=100)]], "Per service.") = {}
    resources: doc(dict[Component | Literal["connector"], Resources], "Per service.") = {}
    gitops: doc(GitOps | None, "GitOps repository; none = render only.") = None


class Environment(Spec):
    """One deployment's whole definition (`environments/<name>.yaml`)."""

    api_version: Annotated[Literal["ssmd/v1"], msgspec.Meta(description="Schema version.")] = (
        msgspec.field(name="apiVersion")
    )
    kind: Annotated[Literal["Environment"], msgspec.Meta(description="Always Environment.")]
    metadata: Metadata
    feeds: doc(dict[Name, Feed], "Feeds by name.") = {}
    storage: Storage = Storage()
    streams: Streams = Streams()
    clients: doc(list[Client], "Consumers and their entitlements.") = []
    transforms: doc(dict[Name, Transform], "Transforms by name.") = {}
    calendars: doc(dict[Name, Calendar], "Calendars by name.") = {}
    schedules: doc(dict[Name, Schedule], "Schedules by name.") = {}
    quality: Quality = Quality()
    integrations: Integrations = Integrations()
    deploy: Deploy = Deploy()
