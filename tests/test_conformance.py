"""What Cloud Custodian's own test suite checks of every element, checked of ours.

c7n's `tests/test_policy.py::PolicyMetaLint` and `tests/test_doc_examples.py` run from
its source only (they are not on the package index); these tests hold the plugin to the
same rules, and to one more: installing it changes no stock element.
"""
import itertools
import json
import math
import sys

import pytest
import yaml
from c7n.config import Config
from c7n.exceptions import PolicyValidationError
from c7n.loader import PolicyLoader
from c7n.provider import clouds
from c7n.resources import load_resources
from c7n.schema import ElementSchema

from c7n_unused_keys.schema_check import check_schema
from conftest import run_command

RESOURCES = ('aws.iam-user', 'aws.iam-access-key', 'aws.account')


def registries():
    load_resources(RESOURCES)
    for name in RESOURCES:
        resource = clouds['aws'].resources[name.split('.', 1)[1]]
        for registry in (resource.filter_registry, resource.action_registry):
            yield name, registry


def ours():
    """(resource, registered name, class) of every element the plugin registers."""
    return [(resource, name, cls) for resource, registry in registries()
            for name, cls in registry.items() if cls.__module__.startswith('c7n_unused_keys')]


ELEMENTS = ours()
IDS = ['%s:%s' % (r, n) for r, n, _ in ELEMENTS]


@pytest.mark.parametrize('resource,name,cls', ELEMENTS, ids=IDS)
def test_every_element_refuses_unknown_options(resource, name, cls):
    """PolicyMetaLint.test_filter_action_additional (it spares c7n's own `notify` only)."""
    assert cls.schema.get('additionalProperties', True) is False
    assert cls.schema['properties']['type'] == {'enum': [name]}


def doc_examples(classes):
    """The policies c7n's test_doc_examples extracts from docstrings, its way: the text
    split at 'yaml' and at blank lines, and every piece holding `policies:` or
    `resource:` read as policies."""
    found = []
    for cls in classes:
        doc = ElementSchema.doc(cls) or ''
        pieces = itertools.chain.from_iterable(x.split('\n\n') for x in doc.split('yaml'))
        for piece in pieces:
            if 'policies:\n' in piece:
                found.append((cls, piece))
            elif 'resource:' in piece:
                found.append((cls, 'policies:\n' + piece))
    return found


def test_every_docstring_example_is_extracted_loads_and_has_a_name_of_its_own():
    classes = list(dict.fromkeys(cls for _, _, cls in ELEMENTS))
    examples = doc_examples(classes)
    by_name = {}
    for cls, text in examples:
        data = yaml.safe_load(text)   # a piece of prose read as YAML fails here
        for policy in data['policies']:
            assert by_name.setdefault(policy['name'], policy) == policy, \
                'example %s is used twice with different content (%s)' % (
                    policy['name'], cls.__name__)
    # Every element shows at least one example, and each loads as c7n loads it.
    assert {cls for cls, _ in examples} == set(classes)
    loader = PolicyLoader(Config.empty())
    for policy in by_name.values():
        loader.load_data({'policies': [policy]}, 'memory://')
        assert len(policy['name']) < 54 or 'mode' not in policy


def number_fields(schema, path=()):
    """The path of every number or integer field of a schema, however nested."""
    types = schema.get('type')
    types = types if isinstance(types, list) else [types]
    if 'number' in types or 'integer' in types:
        yield path
    for name, sub in schema.get('properties', {}).items():
        yield from number_fields(sub, path + (name,))
    for key in ('anyOf', 'oneOf', 'allOf'):
        for sub in schema.get(key, []):
            yield from number_fields(sub, path)


NUMBERS = sorted({(name, cls, path) for _, name, cls in ELEMENTS
                  for path in number_fields(cls.schema)}, key=lambda x: (x[0], x[2]))


def test_the_walk_finds_the_numbers_of_every_kind():
    fields = {(name, '.'.join(path)) for name, _, path in NUMBERS}
    assert {('unused-access-keys', 'days'), ('retire-access-keys', 'max-deactivations.percent'),
            ('notify-unused-keys', 'deletion_notice_days')} <= fields


@pytest.mark.parametrize('name,cls,path', NUMBERS,
                         ids=['%s.%s' % (n, '.'.join(p)) for n, _, p in NUMBERS])
@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_no_number_option_takes_nan_or_infinity(name, cls, path, value):
    data = {'type': name}
    inner = data
    for part in path[:-1]:
        inner = inner.setdefault(part, {})
    inner[path[-1]] = value
    element = cls(data, None)
    with pytest.raises(PolicyValidationError) as refused:
        check_schema(element)
    assert '%s must be a finite number, not %s' % ('.'.join(path), value) in str(refused.value)


STOCK = '''
import json
from c7n.resources import load_resources
from c7n.provider import clouds
load_resources(%r)
print(json.dumps({name: {kind: {k: c.__module__ + '.' + c.__qualname__
                                for k, c in getattr(clouds['aws'].resources[name.split('.')[1]],
                                                    kind + '_registry').items()}
                         for kind in ('filter', 'action')} for name in %r}))
''' % (RESOURCES, RESOURCES)


def test_installing_the_plugin_changes_no_stock_element():
    """Every filter and action of the three resources, in an interpreter without the
    plugin, is the same class with it; the plugin only adds names."""
    run = run_command([sys.executable, '-c', STOCK], None,
                      extra_env={'C7N_UNUSED_KEYS_DISABLE': '1'})
    assert run.returncode == 0, run.stderr
    stock = json.loads(run.stdout)
    ours_by_resource = {}
    for resource, registry in registries():
        kind = 'filter' if 'filter' in registry.plugin_type else 'action'
        here = {k: c.__module__ + '.' + c.__qualname__ for k, c in registry.items()}
        for name, cls in stock[resource][kind].items():
            assert here[name] == cls, '%s %s %s is replaced' % (resource, kind, name)
        added = set(here) - set(stock[resource][kind])
        # Beside ours, stock elements that other c7n modules, loaded in this process by
        # other tests, register on these resources.
        assert all(here[n].startswith(('c7n_unused_keys.', 'c7n.')) for n in added), \
            {n: here[n] for n in added}
        ours_by_resource.setdefault(resource, set()).update(
            n for n in added if here[n].startswith('c7n_unused_keys.'))
    assert 'post-finding' in stock['aws.iam-access-key']['action']
    assert {'unused-access-keys', 'retire-access-keys'} <= ours_by_resource['aws.iam-user']
