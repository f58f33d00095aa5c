"""The names the plugin writes into accounts and outputs, defined once. Pure: no c7n, no AWS.

Policy files spell them out; the code and the tests take them from here.
"""
# User tag that exempts keys: the default of the filter's `exempt-tag`.
EXEMPT_TAG = 'c7n-unused-keys-exempt'
# Head of the marker tags (`marker-tag-prefix`): `<prefix>:<AccessKeyId>` and
# `<prefix>-reactivated:<AccessKeyId>` (see `markers`).
MARKER_PREFIX = 'c7n-unused-keys'
REACTIVATED_SUFFIX = '-reactivated'

# Annotations on the resources of resources.json.
UNUSED_ANNOTATION = 'c7n:unused-access-keys'
EXEMPT_ANNOTATION = 'c7n:exempt-access-keys'
RESULTS_ANNOTATION = 'c7n:retire-access-keys'
UNUSED_PASSWORD_ANNOTATION = 'c7n:unused-passwords'
EXEMPT_PASSWORD_ANNOTATION = 'c7n:exempt-passwords'
DORMANT_ANNOTATION = 'c7n:dormant-user'
# retire-passwords' records on each user it acted on.
PASSWORD_RESULTS = 'c7n:retire-passwords'

# Each run of retire-access-keys also writes its records to a file of its own,
# `retire-access-keys-<UTC start, %Y%m%dT%H%M%S%fZ>-<execution id>.json`: a retry in the
# same output folder overwrites `action-retire-access-keys`, never another run's file.
RUN_RECORDS = 'retire-access-keys-%s-%s.json'
RUN_STAMP = '%Y%m%dT%H%M%S%fZ'
