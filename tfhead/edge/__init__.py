"""The on-device side of tfhead: exported per-person TFLite models and the runner `tfhead-edge`.

Imports only LiteRT (`ai-edge-litert`), NumPy, OpenCV and dlib — never TensorFlow — so
`pip install .[edge]` is all a phone-class Linux board or a laptop needs:

    from tfhead.edge import EdgeModel
    model = EdgeModel.load("astronaut.fp16.tflite", num_threads=2)
    frames = model.render(landmarks)                # [N, 68, 2] crop px → [N, R, R, 3] uint8
    model.source                                    # the source photo (PersonSource) or None

The file format (one `.tflite` with a JSON metadata entry named "tfhead", and the source photo as
a JPEG entry) is in `model_file`.
"""

from tfhead.edge.model import EdgeModel, Invoker, undelegated_ops
from tfhead.edge.model_file import (FORMAT_VERSION, METADATA_NAME, ModelFileError, read_metadata,
                                    with_metadata)

__all__ = ["EdgeModel", "FORMAT_VERSION", "Invoker", "METADATA_NAME", "ModelFileError",
           "read_metadata", "undelegated_ops", "with_metadata"]
