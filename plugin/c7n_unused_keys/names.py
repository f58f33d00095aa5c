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
