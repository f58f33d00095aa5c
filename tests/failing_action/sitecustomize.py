"""A test-only action for the report's tests, loaded into `custodian` and `c7n-org`
subprocesses by putting this folder on PYTHONPATH.

`fail-run` fails the policy run the way an action does, with a PolicyExecutionError
raised from process() (as retire-access-keys does when keys fail or its circuit
breaker trips). With `log: true` it first logs its message as an ERROR on the
`custodian.retire-access-keys` logger, the way an action makes its reason reach
custodian-run.log under c7n-org (which mutes the traceback c7n logs).
"""
import logging

from c7n.actions import BaseAction
from c7n.exceptions import PolicyExecutionError
from c7n.resources.iam import User
from c7n.utils import type_schema


@User.action_registry.register('fail-run')
class FailRun(BaseAction):
    schema = type_schema('fail-run', required=['message'], message={'type': 'string'},
                         log={'type': 'boolean'})
    permissions = ()

    def process(self, resources):
        if self.data.get('log'):
            logging.getLogger('custodian.retire-access-keys').error(self.data['message'])
        raise PolicyExecutionError(self.data['message'])
