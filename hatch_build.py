"""Hatchling build hook: compile the optional C helper ``flowstage._speedups``.

The extension only speeds up :meth:`flowstage.KeyHash.buckets` and the process
executor's text frames; flowstage works the same without it (pure Python). So this
hook never fails a build unless asked to:

* ``FLOWSTAGE_NO_EXTENSIONS=1`` (not empty, not ``0``): do not compile; the wheel is
  pure Python. The same variable at run time makes flowstage ignore a built module.
* ``FLOWSTAGE_REQUIRE_EXTENSIONS=1``: a failed compilation fails the build (CI sets
  it, so that a broken extension is noticed rather than silently skipped).
* otherwise a failure (no compiler, no Python headers, ...) prints a warning and
  the build goes on without the extension.

Wheels get the module under ``flowstage/`` and a platform tag. Editable installs
(``pip install -e .``) put it next to the sources, in ``flowstage/`` (ignored by git),
where the editable install imports the package from; re-run the install after
editing ``_speedups.c``.

The compiler is driven by setuptools' ``build_ext`` (a build requirement), which
knows each platform's compiler and flags.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "flowstage._speedups"
SOURCE = "flowstage/_speedups.c"


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


class SpeedupsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        package = root / "flowstage"
        editable = version == "editable"
        if editable:
            # A module left by an earlier editable install would shadow this one's
            # choice (skipped, failed, or built from another source): remove it.
            for stale in [*package.glob("_speedups.*.so"), *package.glob("_speedups.*.pyd")]:
                stale.unlink()
        if _flag("FLOWSTAGE_NO_EXTENSIONS"):
            self.app.display_info("flowstage: FLOWSTAGE_NO_EXTENSIONS is set: pure Python")
            return
        self._tmp = tempfile.mkdtemp(prefix="flowstage-build-")
        try:
            built = self._compile(root, Path(self._tmp))
        except BaseException as exc:  # distutils may raise SystemExit; never KeyboardInterrupt
            if isinstance(exc, KeyboardInterrupt) or _flag("FLOWSTAGE_REQUIRE_EXTENSIONS"):
                raise
            self.app.display_warning(
                f"flowstage: the optional C extension was not built ({exc!r}); "
                "flowstage will use its pure-Python code"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if editable:
            shutil.copy2(built, package / built.name)
        else:
            build_data["force_include"][str(built)] = f"flowstage/{built.name}"
        self.app.display_info(f"flowstage: built {built.name}")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def _compile(self, root: Path, tmp: Path) -> Path:
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        ext = Extension(MODULE, sources=[str(root / SOURCE)])
        dist = Distribution({"name": "flowstage", "ext_modules": [ext]})
        cmd = build_ext(dist)
        cmd.build_lib = str(tmp / "lib")
        cmd.build_temp = str(tmp / "temp")
        cmd.ensure_finalized()
        cmd.run()
        built = Path(cmd.get_ext_fullpath(MODULE))
        if not built.is_file():
            raise RuntimeError(f"build_ext did not produce {built}")
        return built
