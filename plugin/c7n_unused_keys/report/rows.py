"""The report's rows: one per key and step, from the filter's annotations and the
action's records, and the step a dry run would have taken."""
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional

from .. import lifecycle
from ..model import ListedKey
from ..names import DORMANT_ANNOTATION, UNUSED_ANNOTATION, UNUSED_PASSWORD_ANNOTATION
from .layout import ACTION

ACTED = (lifecycle.DEACTIVATED, lifecycle.MARKED, lifecycle.DELETED)
ACCESS_KEY, PASSWORD = 'access key', 'password'
# A dormant user's row (dormant-users): the user itself, left with no credential in use.
USER, DORMANT = 'user', 'dormant'


@dataclass
class Row:
    account: str
    account_id: str
    policy: str
    user: str
    key_id: str
    status: Optional[str] = None
    last_used: Optional[str] = None
    last_service: Optional[str] = None
    last_region: Optional[str] = None
    idle_days: Optional[int] = None
    step: Optional[str] = None
    delete_on: Optional[str] = None
    error: Optional[str] = None
    # Who approved the key's delete, as its record names them.
    approved_by: Optional[str] = None
    would: bool = False
    # The runs read in its folder (1: the oldest) whose record of the key the row shows.
    runs: List[int] = field(default_factory=list)
    # What the row is of: an access key (`key_id`), or the user's console password.
    credential: str = ACCESS_KEY


@dataclass
class Report:
    layout: str
    rows: List[Row] = field(default_factory=list)
    failures: List[Dict[str, str]] = field(default_factory=list)
    # Lambda deployments: {account, policy, region, output}; not failures.
    deployed: List[Dict[str, str]] = field(default_factory=list)
    # The run read for each dated policy folder: {account, policy, folder, started, older}.
    runs: List[Dict] = field(default_factory=list)

    def totals(self) -> Dict[str, Dict[str, int]]:
        out: Dict[str, Dict[str, int]] = {}
        # A key two policies both matched (the report and the retire policy) counts once.
        unused = set()
        for r in self.rows:
            for scope in (r.account, 'all accounts'):
                t = out.setdefault(scope, {'unused': 0})
                one = (scope, r.account, r.key_id or r.user, r.credential)
                if r.idle_days is not None and r.credential != USER and one not in unused:
                    unused.add(one)
                    t['unused'] += 1
                if r.step:
                    name = ('would ' if r.would else '') + r.step
                    t[name] = t.get(name, 0) + 1
        for name, entries in (('failed policies', self.failures),
                              ('deployed policies', self.deployed)):
            for f in entries:
                for scope in (f['account'], 'all accounts'):
                    t = out.setdefault(scope, {'unused': 0})
                    t[name] = t.get(name, 0) + 1
        everyone = out.pop('all accounts', {'unused': 0})
        return dict(sorted(out.items()), **{'all accounts': everyone})


@dataclass
class RunRecords:
    """One run's records: from its own file, or (the latest run) from the action file."""
    execution_id: str
    start: Optional[float]
    records: List[dict]
    error: Optional[str] = None  # what failed the run as a whole (its circuit breaker)
    number: int = 0              # 1 for the oldest run read in its folder


def rows_of(name: str, meta: dict, account: str, account_id: str, resources: list,
            history: List[RunRecords], passwords: Optional[List[dict]] = None) -> List[Row]:
    """The rows of one policy folder: one per key the filter matched in the run
    metadata.json describes (with that run's record of the key, or the step a dry run
    would take), and one per other step a key took in any run read. Records of
    consecutive runs that agree (a key failing on every retry) make one row, with
    their runs."""
    policy = meta.get('policy', {})
    run_id = meta.get('execution', {}).get('id')
    latest = next((h.number for h in history if h.execution_id == run_id), None)
    steps: Dict[tuple, List[list]] = {}   # key -> [[runs, record]] in the runs' order
    for past in history:
        for rec in past.records:
            groups = steps.setdefault((rec['UserName'], rec['AccessKeyId']), [])
            if groups and (groups[-1][1]['Step'], groups[-1][1]['Error']) == (
                    rec['Step'], rec['Error']):
                groups[-1] = [groups[-1][0] + [past.number], rec]
            else:
                groups.append([[past.number], rec])
    would = meta.get('config', {}).get('dryrun') and action_settings(policy) is not None

    def recorded(row: Row, runs: List[int], rec: dict) -> Row:
        row.step, row.delete_on, row.error = rec['Step'], rec.get('DeleteOn'), rec.get('Error')
        row.approved_by = rec.get('ApprovedBy')
        row.runs = runs
        return row

    rows = []
    for res in resources:
        for ann in res.get(UNUSED_ANNOTATION, ()):
            row = Row(account=account, account_id=account_id, policy=name,
                      user=res['UserName'], key_id=ann['AccessKeyId'],
                      status=ann.get('Status'),
                      last_used=(ann.get('LastUsedDate') or '')[:10] or None,
                      last_service=ann.get('LastUsedService'),
                      last_region=ann.get('LastUsedRegion'), idle_days=ann.get('IdleDays'))
            groups = steps.pop((row.user, row.key_id), [])
            mine = groups.pop() if groups and groups[-1][0][-1] == latest else None
            rows.extend(recorded(Row(account=account, account_id=account_id, policy=name,
                                     user=row.user, key_id=row.key_id), runs, rec)
                        for runs, rec in groups)
            if mine:
                recorded(row, *mine)
            elif would:
                would_step(row, res, policy, meta, ann)
            rows.append(row)
    for (user, key_id), groups in sorted(steps.items()):
        rows.extend(recorded(Row(account=account, account_id=account_id, policy=name,
                                 user=user, key_id=key_id), runs, rec) for runs, rec in groups)
    return rows + password_rows(name, account, account_id, resources, passwords or [])


def password_rows(name: str, account: str, account_id: str, resources: list,
                  records: List[dict]) -> List[Row]:
    """One row per unused password the filter matched, with this run's record of it
    (retire-passwords), one per other record (a mark taken off, a password gone), and
    one per dormant user (dormant-users)."""
    by_user = {rec['UserName']: rec for rec in records}

    def recorded(row: Row, rec: Optional[dict]) -> Row:
        if rec:
            row.step, row.delete_on = rec['Step'], rec.get('RemoveOn')
            row.error, row.approved_by = rec.get('Error'), rec.get('ApprovedBy')
        return row
    rows = []
    for res in resources:
        ann = res.get(UNUSED_PASSWORD_ANNOTATION)
        if ann is None:
            continue
        rows.append(recorded(Row(
            account=account, account_id=account_id, policy=name, user=res['UserName'],
            key_id='', last_used=(ann.get('PasswordLastUsed') or '')[:10] or None,
            idle_days=ann.get('IdleDays'), credential=PASSWORD),
            by_user.pop(res['UserName'], None)))
    rows.extend(recorded(Row(account=account, account_id=account_id, policy=name, user=user,
                             key_id='', credential=PASSWORD), rec)
                for user, rec in sorted(by_user.items()))
    for res in resources:
        ann = res.get(DORMANT_ANNOTATION)
        if ann is not None:
            rows.append(Row(account=account, account_id=account_id, policy=name,
                            user=res['UserName'], key_id='',
                            last_used=(ann.get('LastUsed') or '')[:10] or None,
                            idle_days=ann.get('IdleDays'), step=DORMANT, credential=USER))
    return rows


def action_settings(policy: dict) -> Optional[dict]:
    return next((a for a in policy.get('actions', ()) if isinstance(a, dict)
                 and a.get('type') == ACTION), None)


def filter_days(filters) -> Optional[int]:
    """`days` of the first unused-access-keys filter, looking inside and/or/not blocks."""
    for f in filters or ():
        if isinstance(f, dict):
            if f.get('type') == 'unused-access-keys':
                return f.get('days')
            for block in ('and', 'or', 'not'):
                found = filter_days(f.get(block))
                if found is not None:
                    return found
    return None


def would_step(row: Row, resource: dict, policy: dict, meta: dict, ann: dict):
    """The step retire-access-keys would take, from the dry run's facts and settings
    (its recheck included, on the facts the filter saw)."""
    opts = lifecycle.options_from(action_settings(policy),
                                  filter_days(policy.get('filters')) or 0)
    now = datetime.fromtimestamp(meta['execution']['start'], timezone.utc)
    key = ListedKey(user=row.user, key_id=row.key_id, status=row.status,
                    created=now)
    plan = lifecycle.plan_matched(row.user, row.key_id, key,
                                  opts.markers_of(resource.get('Tags')),
                                  now, opts, is_self=False)
    if plan.delete:
        used = ann.get('LastUsedDate')
        plan = lifecycle.confirm_delete(
            plan, key, datetime.fromisoformat(used) if used else None, now, opts)
    row.step, row.would = plan.step, True
    row.delete_on = plan.delete_on.isoformat() if plan.delete_on else None
