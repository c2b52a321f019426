"""Runs a module as __main__ in a process where importing TensorFlow or Keras raises ImportError.

    python tests/no_tensorflow.py tfhead_cli.edge --model=... --driver=... --out=...
    python tests/no_tensorflow.py --import tfhead.face.landmarks,tfhead.edge.model

Used by the tests to prove that the on-device runner needs neither. At exit it prints which of the
blocked packages were imported anyway (none can be: the import itself fails).
"""

import importlib.abc
import runpy
import sys

BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorboard")


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked here: the on-device runner must not need it")
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _Block())
    if sys.argv[1] == "--import":
        import importlib

        for name in sys.argv[2].split(","):
            importlib.import_module(name)
        sys.exit(0)
    module = sys.argv[1]
    sys.argv = [module] + sys.argv[2:]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(f"blocked modules imported: {loaded}", file=sys.stderr)
