"""c7n-unused-keys' local tooling, shipped beside the plugin but not in it: the AWS
emulator (`emulator`, with its fixes to moto in `moto_fixes`), its seeding (`seed`),
`c7n-unused-keys sandbox` (`serve`), `make demo` (`demo`), Lambda functions run here as
Lambda runs them (`functions`) and `make demo-lambda` (`demo_lambda`).

Nothing here runs in an account. It is a package of its own, so that the Lambda zip,
which c7n builds from `packages: [c7n_unused_keys]`, does not carry it. It needs the
`[sandbox]` extra (moto's server); importing the package itself imports nothing.
"""
INSTALL = "pip install 'c7n-unused-keys[sandbox]'"


class MissingExtra(Exception):
    """The `[sandbox]` extra is not installed; the message says what to install."""


def require_extra():
    """Raise MissingExtra, naming the extra, when moto's server cannot be imported."""
    try:
        import moto.moto_server.werkzeug_app  # noqa: F401
    except ImportError as e:
        missing = (e.name or 'moto').split('.')[0]
        raise MissingExtra('%s is not installed; it comes with the sandbox extra: %s' % (
            missing, INSTALL)) from None
