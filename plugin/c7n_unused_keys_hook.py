"""Start-up hook, run from c7n_unused_keys.pth in every Python process.

c7n has no plugin entry points: a plugin must get itself imported. This module
only puts a finder on sys.meta_path; when `c7n.resources.iam` is imported, the
plugin is imported right after it. A process that never imports c7n pays for
this module alone, so it imports nothing beyond sys and os.
Set C7N_UNUSED_KEYS_DISABLE=1 to turn it off.
"""
import os
import sys

TARGET = 'c7n.resources.iam'
PLUGIN = 'c7n_unused_keys.register'


class _RegisteringLoader:
    """Wraps the real loader of TARGET and imports the plugin after it ran."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if _plugin_importing():
            # A module of the plugin is importing c7n itself (someone imported it by
            # hand): importing PLUGIN now would meet that module half-made.
            return
        try:
            __import__(PLUGIN)
        except Exception as e:
            # Stock c7n keeps working; policies using the plugin fail to validate.
            import warnings
            warnings.warn('c7n-unused-keys failed to load: %r' % e, RuntimeWarning)

    def __getattr__(self, name):
        if name == '_loader':
            raise AttributeError(name)
        return getattr(self._loader, name)


def _plugin_importing() -> bool:
    for name, mod in list(sys.modules.items()):
        if name == 'c7n_unused_keys' or name.startswith('c7n_unused_keys.'):
            if getattr(getattr(mod, '__spec__', None), '_initializing', False):
                return True
    return False


class PluginFinder:
    """A meta path finder that answers for TARGET only, by asking the others."""

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, 'exec_module'):
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def install():
    if os.environ.get('C7N_UNUSED_KEYS_DISABLE', '') not in ('', '0'):
        return
    if not any(isinstance(f, PluginFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, PluginFinder())


install()
