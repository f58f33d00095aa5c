"""Reading the c7n-org accounts file."""
from typing import Dict

import yaml


def load_accounts(config_path: str) -> Dict[str, str]:
    """{account_id: name} of a c7n-org accounts file."""
    with open(config_path) as fh:
        data = yaml.safe_load(fh) or {}
    return {str(a['account_id']): a.get('name', str(a['account_id']))
            for a in data.get('accounts', ())}
