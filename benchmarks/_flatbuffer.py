"""What a .tflite file's bytes are: constant tensors by type, quantization parameters, metadata,
and the rest (the graph's tables: tensors, operators, names). Read with TensorFlow's generated
schema module; used by export.py and quantization.py to say where an int8 file's size goes."""

from __future__ import annotations

import collections


def sizes(content: bytes) -> dict[str, int]:
    """Bytes of `content` by part: `const <TYPE>` (each constant buffer once, by the type of the
    first tensor that uses it), `quantization` (scales as float32 and zero points as int64, per
    tensor or per channel), `metadata` (buffers of the model's metadata entries), `names`
    (tensor names) and `rest` (file size minus all of those), and `total`."""
    from tensorflow.lite.python import schema_py_generated as schema

    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(content, 0)
    parts: collections.Counter = collections.Counter()
    metadata = {model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    for index in metadata:
        parts["metadata"] += model.Buffers(index).DataLength()
    seen = set(metadata)
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            parts["names"] += len(tensor.Name() or b"")
            quantization = tensor.Quantization()
            if quantization is not None:
                parts["quantization"] += (4 * quantization.ScaleLength()
                                          + 8 * quantization.ZeroPointLength())
            index = tensor.Buffer()
            if index in seen:
                continue
            seen.add(index)
            length = model.Buffers(index).DataLength()
            if length:
                parts[f"const {types[tensor.Type()]}"] += length
    parts["rest"] = len(content) - sum(parts.values())
    parts["total"] = len(content)
    return dict(parts)


def weights(parts: dict[str, int]) -> int:
    """Bytes of the constant tensors (weights, biases, other constants)."""
    return sum(v for k, v in parts.items() if k.startswith("const "))
