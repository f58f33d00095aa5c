"""Local tooling: the AWS emulator (`server`), its seeding (`seed`), `make demo` (`demo`),
Lambda functions run here as Lambda runs them (`functions`) and `make demo-lambda`
(`demo_lambda`).

Nothing here runs in an account: the filters, the action and the Lambda handler never
import this package, though it travels in the function's zip with the rest. It needs
the `[sandbox]` extra (moto's server); importing the package itself imports nothing.
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
