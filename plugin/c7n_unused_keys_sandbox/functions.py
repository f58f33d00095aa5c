"""Run a policy's Lambda function here, the way Lambda runs it, against the sandbox.

The emulator stores a function's zip but cannot invoke it without docker. So the zip
is unpacked into a folder and its handler is called in a clean interpreter
(`python -I -S`): on `sys.path` only that folder and boto3 with its dependencies, which
is what Lambda's Python runtime provides. Site-packages is never there, so a package
missing from the zip fails here as it would in AWS. Nor is bytecode written (`-B`): the
zip holds none and /var/task is read-only, so every cold start compiles its imports.
"""
import importlib.metadata
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Optional, Set

from .emulator import account_client

RUNTIME = ('boto3',)   # what Lambda's Python runtime provides, with its dependencies

_RUNNER = r'''
import json, logging, sys
sys.path[:0] = [{task!r}, {runtime!r}]
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format='%(asctime)s %(name)s %(levelname)s %(message)s')
module, function = {handler!r}.rsplit('.', 1)
import importlib
result = getattr(importlib.import_module(module), function)(json.loads({event!r}), None)
print(json.dumps({{"result": result, "sys_path": sys.path,
                  "modules": sorted({{m.split('.')[0] for m in sys.modules}})}}))
'''


def _distributions(names) -> Set[str]:
    seen: Set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace('_', '-')
        if name in seen:
            continue
        seen.add(name)
        for req in importlib.metadata.distribution(name).requires or ():
            if 'extra ==' not in req:
                todo.append(re.match(r'[A-Za-z0-9._-]+', req).group(0))
    return seen


def _top_level(dist_name: str) -> Set[str]:
    names = set()
    for f in importlib.metadata.distribution(dist_name).files or ():
        top = f.parts[0]
        if top.endswith(('.dist-info', '.egg-info', '.pth')) or top in ('..', '__pycache__'):
            continue
        names.add(top)
    return names


def runtime_folder(dest: Path) -> Path:
    """A folder holding boto3 and its dependencies only (links to this environment's)."""
    dest.mkdir(parents=True, exist_ok=True)
    for dist in _distributions(RUNTIME):
        files = importlib.metadata.distribution(dist)
        for top in _top_level(dist):
            src = Path(files.locate_file(top))
            link = dest / top
            if src.exists() and not link.exists():
                link.symlink_to(src)
    return dest


def deployed_code(account: str, region: str, function_name: str) -> bytes:
    """The zip that was uploaded to the emulator (in this process) for a function."""
    from moto.awslambda.models import lambda_backends
    return lambda_backends[account][region].get_function(function_name).code_bytes


def unpack(code: bytes, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(code)) as z:
        z.extractall(dest)
    return dest


def scheduled_event(account: str, region: str, rule: str) -> dict:
    """The event EventBridge sends for a schedule rule."""
    return {
        'version': '0', 'id': 'c7n-unused-keys-local', 'detail-type': 'Scheduled Event',
        'source': 'aws.events', 'account': account, 'region': region,
        'time': datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'resources': ['arn:aws:events:%s:%s:rule/%s' % (region, account, rule)],
        'detail': {}}


def invoke(task: Path, runtime: Path, handler: str, event: dict, env: Dict[str, str],
           timeout: Optional[float] = 600) -> subprocess.CompletedProcess:
    """Call `handler` of the unpacked function in `task`, as Lambda would: that folder
    as working directory and `env` as the environment (the function role's credentials,
    its region). The last line of stdout is JSON: the result, sys.path, top modules."""
    code = _RUNNER.format(task=str(task), runtime=str(runtime), handler=handler,
                          event=json.dumps(event))
    run_env = {'PATH': os.environ.get('PATH', ''), 'LAMBDA_TASK_ROOT': str(task)}
    run_env.update(env)
    return subprocess.run([sys.executable, '-I', '-S', '-B', '-c', code], cwd=task, env=run_env,
                          capture_output=True, text=True, timeout=timeout)


FUNCTION_ROLE = 'c7n-unused-keys-lambda'
OUTPUT_BUCKET = 'c7n-unused-keys-output'
_LAMBDA_TRUST = {'Version': '2012-10-17', 'Statement': [{
    'Effect': 'Allow', 'Principal': {'Service': 'lambda.amazonaws.com'},
    'Action': 'sts:AssumeRole'}]}


def prepare_account(emu, account: str):
    """The role that the account's functions run as (named as in lambda/)."""
    iam = emu.iam_client(account)
    try:
        iam.create_role(RoleName=FUNCTION_ROLE,
                        AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST))
    except iam.exceptions.EntityAlreadyExistsException:
        pass


def prepare_bucket(emu, account: str, bucket: str = OUTPUT_BUCKET):
    """The organisation's output bucket, held by `account`."""
    s3 = account_client(emu.env(), account, 's3', 'us-east-1')
    if bucket not in [b['Name'] for b in s3.list_buckets()['Buckets']]:
        s3.create_bucket(Bucket=bucket)


def function_env(emu_env: Dict[str, str], account: str, region: str = 'us-east-1',
                 function_name: str = '') -> Dict[str, str]:
    """What Lambda gives the function: its role's credentials and its region."""
    import boto3
    sts = boto3.client('sts', **_client_args(emu_env, region))
    creds = sts.assume_role(RoleArn='arn:aws:iam::%s:role/%s' % (account, FUNCTION_ROLE),
                            RoleSessionName=function_name or 'local')['Credentials']
    return {'AWS_ACCESS_KEY_ID': creds['AccessKeyId'],
            'AWS_SECRET_ACCESS_KEY': creds['SecretAccessKey'],
            'AWS_SESSION_TOKEN': creds['SessionToken'],
            'AWS_REGION': region, 'AWS_DEFAULT_REGION': region,
            'AWS_LAMBDA_FUNCTION_NAME': function_name,
            'AWS_ENDPOINT_URL': emu_env['AWS_ENDPOINT_URL']}


def _client_args(emu_env, region):
    return dict(endpoint_url=emu_env['AWS_ENDPOINT_URL'], region_name=region,
                aws_access_key_id=emu_env['AWS_ACCESS_KEY_ID'],
                aws_secret_access_key=emu_env['AWS_SECRET_ACCESS_KEY'])
