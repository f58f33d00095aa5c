"""c7n-unused-keys: find unused IAM access keys and retire them safely.

Importing the package registers nothing and imports neither c7n nor boto3, so that
the pure modules (`decide`, `lifecycle`, `markers`, `model`) and the report load
fast. `import c7n_unused_keys.register` registers the plugin with c7n; stock
`custodian` and `c7n-org` do that through the start-up hook.
"""
__version__ = '0.1.0'
