"""Plain records shared by the fact gatherers, the decisions and the c7n shell."""
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Dict, FrozenSet, List, Mapping, Optional, Tuple

SOURCE_API = 'api'
SOURCE_REPORT = 'credential-report'


@dataclass(frozen=True)
class KeyFacts:
    """What IAM says about one access key. Datetimes are timezone-aware (UTC)."""
    user: str
    key_id: str
    status: str
    created: datetime
    last_used: Optional[datetime]
    last_service: Optional[str]
    last_region: Optional[str]
    source: str


@dataclass(frozen=True)
class ListedKey:
    """One row of ListAccessKeys."""
    user: str
    key_id: str
    status: str
    created: datetime


@dataclass(frozen=True)
class Reads:
    """What a filter read of one user in a run: `at` is time.monotonic() just before
    its ListAccessKeys (`keys`); `last_used` holds the GetAccessKeyLastUsed facts read
    after it, by key id."""
    at: float
    keys: List[ListedKey]
    last_used: Dict[str, KeyFacts]


@dataclass
class RunFindings:
    """What an unused-access-keys filter found in one policy execution, handed to the
    retire action of the same policy: the key ids it matched by user, how many keys it
    looked at (the breaker's percent), and its reads of each user (`Reads`)."""
    matches: Dict[str, List[str]] = field(default_factory=dict)
    keys_seen: int = 0
    reads: Dict[str, Reads] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportSlot:
    """One access_key_N_* group of a credential report row. It names a slot, not a key."""
    user: str
    slot: int
    active: bool
    last_rotated: datetime
    last_used: Optional[datetime]
    last_service: Optional[str]
    last_region: Optional[str]


@dataclass(frozen=True)
class PasswordRow:
    """The password columns of a credential report row. `last_used` is None when the
    report has no date: no password (`N/A`), never used or used before October 2014
    (`no_information`), or `not_supported`."""
    user: str
    enabled: bool
    last_used: Optional[datetime]


@dataclass(frozen=True)
class PasswordFacts:
    """What IAM says of one user's console password: when its login profile was
    created (GetLoginProfile) and when it was last used (GetUser's PasswordLastUsed,
    None: never)."""
    user: str
    created: datetime
    last_used: Optional[datetime]
    source: str


@dataclass(frozen=True)
class CredentialReport:
    generated: datetime
    slots: Mapping[str, Tuple[ReportSlot, ...]]
    # By user: its password columns (every user of the report has a row).
    passwords: Mapping[str, PasswordRow] = field(default_factory=dict)


@dataclass(frozen=True)
class Thresholds:
    days: int
    never_used_days: int
    max_days: Optional[int] = None
    status: str = 'any'


@dataclass(frozen=True)
class Exemption:
    """A parsed exempt tag: every key (`all_keys`) or the named ones, until a date;
    `password` (the token `password`, or `*`) exempts the user's console password."""
    raw: str
    all_keys: bool
    key_ids: FrozenSet[str]
    until: Optional[date]
    password: bool = False


@dataclass(frozen=True)
class Verdict:
    idle_days: int
    never_used: bool
    reason: str
