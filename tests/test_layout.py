"""The no-TensorFlow boundary: every module of the packages the on-device runner uses imports where
TensorFlow, Keras and TensorBoard cannot be imported (tests/no_tensorflow.py blocks them)."""

import os
import pkgutil
import subprocess
import sys

import tfhead

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_FREE_PACKAGES = ("face", "io", "animation", "edge")
TF_FREE_MODULES = ("tfhead", "tfhead.config", "tfhead.errors", "tfhead.runtime")


def tf_free_modules() -> list[str]:
    names = list(TF_FREE_MODULES)
    for package in TF_FREE_PACKAGES:
        path = os.path.join(os.path.dirname(tfhead.__file__), package)
        names.append(f"tfhead.{package}")
        names += [f"tfhead.{package}.{m.name}" for m in pkgutil.iter_modules([path])]
    return names


def import_blocked(modules):
    return subprocess.run([sys.executable, os.path.join(REPO, "tests", "no_tensorflow.py"),
                           "--import", ",".join(modules)], capture_output=True, text=True,
                          cwd=REPO)


def test_the_tensorflow_free_packages_import_without_tensorflow():
    modules = tf_free_modules()
    assert {"tfhead.face.landmarks", "tfhead.io.outputs", "tfhead.animation.reenact",
            "tfhead.edge.model"} <= set(modules)
    result = import_blocked(modules)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_blocker_really_blocks():
    result = import_blocked(["tfhead.models.ops"])
    assert result.returncode != 0 and "blocked here" in result.stderr
