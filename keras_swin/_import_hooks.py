"""Code run around the first import of a top-level module.

The package must not import Keras (or TensorFlow) itself: the command line
picks the backend after `import keras_swin`, and importing a backend costs
seconds. Two things still have to happen when somebody else imports them:
the package's layers register with Keras right after Keras loads, and
TensorFlow's native load-time banners are filtered while it loads. Both
use `FirstImportHook`, which stdlib alone implements.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Callable


class _WrappedLoader(importlib.abc.Loader):
    """Runs another loader's `exec_module` inside the hook's context."""

    def __init__(self, loader, hook: FirstImportHook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._hook.remove()
        # The module keeps its own loader; nothing later sees this wrapper.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with self._hook.around():
            self._loader.exec_module(module)
        if self._hook.after is not None:
            self._hook.after()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class FirstImportHook(importlib.abc.MetaPathFinder):
    """A `sys.meta_path` finder acting once, when `name` is first executed.

    It wraps the real loader of the top-level module `name`: the module
    executes inside `around()`, then `after()` runs, and the hook removes
    itself. A mere look-up (`importlib.util.find_spec(name)`) executes
    nothing and leaves the hook armed.

    Args:
        name: a top-level module name, e.g. "keras".
        around: returns a context manager entered while the module runs.
        after: called once the module has finished executing.

    Example:
        >>> hook = FirstImportHook("keras", after=lambda: print("loaded"))
        >>> hook.install()
        >>> import keras  # prints "loaded"
    """

    def __init__(
        self,
        name: str,
        *,
        around: Callable[[], contextlib.AbstractContextManager] = (
            contextlib.nullcontext
        ),
        after: Callable[[], None] | None = None,
    ):
        self.name = name
        self.around = around
        self.after = after
        self._finding = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or self._finding:
            return None
        self._finding = True  # the other finders answer the inner search
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _WrappedLoader(spec.loader, self)
        return spec

    def install(self) -> None:
        """Puts the hook first on `sys.meta_path` (once)."""
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def remove(self) -> None:
        """Takes the hook off `sys.meta_path` (if it is there)."""
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)


def lazy_exports(module: str, exports: dict, submodules=()) -> tuple:
    """A package's `__getattr__` and `__dir__` that import names on use.

    Each public name is imported from its module the first time it is
    read, then kept in the package's namespace; the command line can so
    choose the Keras backend before anything imports Keras.

    Args:
        module: the package's name (`__name__`).
        exports: public name -> the module that defines it.
        submodules: subpackage names that `package.<name>` imports.

    Returns:
        `(__getattr__, __dir__)` for the package's module namespace.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(
        ...     __name__, {"SwinTiny": "keras_swin.applications"})
    """
    namespace = sys.modules[module].__dict__
    public = sorted(set(exports) | set(submodules))

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        if name in submodules:
            return importlib.import_module(f"{module}.{name}")
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
