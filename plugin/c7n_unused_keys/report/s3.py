"""Reading an output written to S3: only the folders of the runs the report reads are
downloaded. The only module of the report that imports boto3."""
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import parse_qs, urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from . import files as bounded_files
from .layout import RUN_FILE, run_record_names, runs_of
from .output import read
from .rows import Report


class S3Error(Exception):
    pass


def read_s3(url: str, accounts: Optional[Dict[str, str]] = None) -> Report:
    """The report of an `s3://bucket/prefix` output (c7n's `?region=` is taken too).

    Lists the prefix, downloads only the folders of the runs the report reads (the
    latest of each policy) to a temporary folder, and reads them there. boto3 (1.28 and
    later) takes AWS_ENDPOINT_URL and the credentials from the environment itself."""
    parsed = urlparse(url)
    bucket, prefix = parsed.netloc, parsed.path.strip('/')
    base = prefix + '/' if prefix else ''
    try:
        client = boto3.client('s3', region_name=parse_qs(parsed.query).get('region', [None])[0])
        pages = client.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=base)
        # Keys whose path could leave the temporary folder are not c7n's: left out.
        sizes = {o['Key'][len(base):]: o.get('Size', 0) for page in pages
                 for o in page.get('Contents', ())}
        limit = bounded_files.MAX_FILE_BYTES
        files = [f for f in sizes if not {'', '.', '..'} & set(f.split('/'))]
        with tempfile.TemporaryDirectory(prefix='c7n-unused-keys-report-') as tmp:
            out = Path(tmp)
            wanted = {run.path for run in runs_of(out, files)[1]}
            by_folder: Dict[Path, List[str]] = {}
            for f in files:
                if (out / f).parent in wanted:
                    by_folder.setdefault((out / f).parent, []).append(f)
            for folder, names in by_folder.items():
                folder.mkdir(parents=True, exist_ok=True)
                # Of the run record files, only those the report reads.
                records = set(run_record_names(f.rsplit('/', 1)[-1] for f in names)[0])
                for f in names:
                    name = f.rsplit('/', 1)[-1]
                    if RUN_FILE.match(name) and name not in records:
                        continue
                    if sizes[f] > limit:
                        # Its first bytes are enough for the bound to refuse it.
                        body = client.get_object(Bucket=bucket, Key=base + f,
                                                 Range='bytes=0-%d' % limit)['Body']
                        with open(out / f, 'wb') as fh:
                            shutil.copyfileobj(body, fh)
                    else:
                        client.download_file(bucket, base + f, str(out / f))
            return read(out, accounts, files)
    except (BotoCoreError, ClientError) as e:
        raise S3Error(str(e)) from e
