"""An element's own schema, enforced by its validate().

`custodian validate` and `custodian run` check every policy against c7n's jsonschema;
`c7n-org run` and the Lambda handler only call each element's validate(). So each
filter and action of the plugin checks its data against its `schema` there too, with
the message `custodian validate` gives, which names the field (`On instance['days']`).

Inside a Lambda function there is no jsonschema (the runtime has boto3 and botocore
only), and c7n's handler validates without it. The function runs the policy that
`custodian run` or `c7n-org run` checked, with jsonschema, before deploying it; there
the schema check is skipped, and the cross-field checks of validate() still run.
"""
import logging
import math

from c7n.exceptions import PolicyValidationError

from .lambda_mode import check_lambda_mode

log = logging.getLogger('custodian.unused-keys')

# A circuit breaker's limit (`max-deactivations`, `max-removals`), as c7n's
# `max-resources`: an amount and/or a percent, and how they combine.
BREAKER_SCHEMA = {
    'type': 'object', 'additionalProperties': False, 'minProperties': 1,
    'properties': {
        'amount': {'type': 'integer', 'minimum': 0},
        'percent': {'type': 'number', 'minimum': 0, 'maximum': 100},
        'op': {'enum': ['or', 'and']}}}


def check_schema(element):
    """Raise PolicyValidationError on the first error of `element.data` against
    `element.schema`, as `custodian validate` reports it, or when the policy runs in
    Lambda without the plugin in its function (lambda_mode)."""
    if element.manager is not None:
        check_lambda_mode(element.manager.data)
    policy = element.manager.data if element.manager is not None else {}
    # jsonschema takes NaN and infinity for numbers, and NaN passes every bound: a
    # breaker's `percent: .nan` would switch it off. Checked also where there is no
    # jsonschema (Lambda).
    for field, value in numbers_of(element.data):
        if not math.isfinite(value):
            raise PolicyValidationError('{}{} must be a finite number, not {}'.format(
                scope(policy), field, value))
    try:
        from c7n.schema import JsonSchemaValidator, is_c7n_placeholder, specific_error
    except ImportError:  # no jsonschema: in a Lambda function
        log.debug('no jsonschema: %s checked where it was deployed', element.type)
        return
    for error in JsonSchemaValidator(element.schema).iter_errors(element.data):
        error = specific_error(error)
        # As c7n does: `custodian validate` sees variables before they are expanded.
        if error.validator == 'type' and is_c7n_placeholder(error.instance):
            continue
        error.message = scope(policy) + error.message
        raise PolicyValidationError(str(error))


def scope(policy: dict) -> str:
    """The scope line of c7n.schema.policy_error_scope, which needs the whole policy."""
    return 'Error on policy:{} resource:{}\n'.format(
        policy.get('name', 'unknown'), policy.get('resource', 'unknown'))


def numbers_of(data, path=''):
    """(dotted field, value) of every float in an element's data, however nested."""
    if isinstance(data, float):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from numbers_of(value, '%s.%s' % (path, key) if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from numbers_of(value, '%s[%d]' % (path, i))


def check_max_days(element: str, data, policy: str):
    """`max-days` bounds a warning window above `days`."""
    days, max_days = data['days'], data.get('max-days')
    if max_days is not None and max_days <= days:
        raise PolicyValidationError(
            '%s: max-days (%s) must be greater than days (%s) on %s' % (
                element, max_days, days, policy))


def check_breaker(element: str, option: str, data, policy: str):
    """A circuit breaker (`max-deactivations`, `max-removals`) needs a limit."""
    limit = data.get(option)
    if limit is not None and 'amount' not in limit and 'percent' not in limit:
        raise PolicyValidationError('%s: %s needs an amount, a percent or both, on %s' % (
            element, option, policy))


def check_approvers(element: str, data, what: str, policy: str):
    """`required-approvers` and `required-approvers-tag` count the approvals of
    `approval-tag`; the tag names users who need two or more. `what`: the writes they
    approve (deletes, removals)."""
    needed = data.get('required-approvers', 1)
    if (needed > 1 or 'required-approvers-tag' in data) and not data.get('approval-tag'):
        raise PolicyValidationError(
            '%s: required-approvers and required-approvers-tag count the approvals of '
            'approval-tag; set approval-tag too, on %s' % (element, policy))
    if 'required-approvers-tag' in data and needed < 2:
        raise PolicyValidationError(
            '%s: required-approvers-tag names the users whose %s need required-approvers; '
            'set required-approvers to 2 or more, on %s' % (element, what, policy))
