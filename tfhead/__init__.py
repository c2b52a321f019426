"""tfhead: few-shot neural talking heads (Zakharov et al., ICCV 2019) in TensorFlow 2 / Keras 3.

Importing the package is cheap and does not import TensorFlow: the on-device runner
(`tfhead.edge`) and the landmark code must work where TensorFlow is not installed.
Import `tfhead.networks`, `tfhead.config` etc. directly.
"""

__version__ = "0.1.0"
