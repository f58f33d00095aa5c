"""Fault injection for the `custodian` and `c7n-org` subprocesses of the tests.

Put this folder on PYTHONPATH and set C7N_TEST_FAULTS to a comma-separated list
of `Operation=ErrorCode`, e.g. `GetCredentialReport=AccessDenied`. Every IAM call
of that operation then fails with that error code, without reaching the emulator.
"""
import os

FAULTS = dict(item.split('=', 1) for item in os.environ.get('C7N_TEST_FAULTS', '').split(',')
              if '=' in item)

if FAULTS:
    import botocore.session

    _create_client = botocore.session.Session.create_client

    def _fail(code):
        def handler(**kwargs):
            from botocore.awsrequest import AWSResponse
            response = AWSResponse(None, 403, {}, None)
            return response, {'Error': {'Code': code, 'Message': 'injected by the tests'},
                              'ResponseMetadata': {'HTTPStatusCode': 403}}
        return handler

    def create_client(self, service_name, *args, **kwargs):
        client = _create_client(self, service_name, *args, **kwargs)
        if service_name == 'iam':
            for op, code in FAULTS.items():
                client.meta.events.register('before-call.iam.%s' % op, _fail(code))
        return client

    botocore.session.Session.create_client = create_client
