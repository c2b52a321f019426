"""Faces without TensorFlow: landmarks (dlib), the one crop rule, the one landmark-image
rasterizer, motion retargeting, a new person's shots, real-photo motion and warping, and
procedural heads. NumPy, OpenCV and dlib only — the on-device runner uses this package."""
