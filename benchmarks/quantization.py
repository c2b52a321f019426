"""int8 on a trained person: per-layer quantization error, quality against fp32, size, latency.

    make demo                                             # writes demo_out/astronaut_person
    python benchmarks/quantization.py                     # ~3 min on 2 cores
    python benchmarks/quantization.py --person=my_person --keep_float=4,8,16

The int8 model of `tfhead.export` keeps the instance-norm/AdaIN statistics and affine, attention,
residual sums and the output in float (`export.INT8_FLOAT_OPS`); its convolutions run in int8.
This script converts the person's generator

  * fully int8 (no op kept in float: what plain post-training quantization gives),
  * as `tfhead.export` does, and
  * as `tfhead.export` does with the `--keep_float` convolutions of largest error also in float,

and prints, for each, the SSIM and max |diff| against the fp32 model on the export's parity sets
(`person`: held-out frames of tracks around the person; `faces`: other face geometries), the
file size against fp32's, and the median latency on LiteRT with 2 threads. The per-layer table is
LiteRT's quantization debugger (`tf.lite.experimental.QuantizationDebugger`) on the 64 calibration
inputs: the RMS error of each quantized op's output against its float output, in units of its
quantization step (rmse / scale; ≈ 0.29 is the error of ideal rounding alone).

Sizes are of the flatbuffer without tfhead's metadata (an exported file also carries the source
photo as a JPEG, ~100 kB in every mode).
"""

import csv
import io
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from _timing import median_ms
from absl import app, flags

_PERSON = flags.DEFINE_string("person", "demo_out/astronaut_person",
                              "A fine-tuned person checkpoint (`make demo` writes the default).")
_KEEP = flags.DEFINE_list("keep_float", ["4", "8"],
                          "Also keep this many of the worst convolutions in float (one row each).")
_TOP = flags.DEFINE_integer("top", 10, "Rows of the per-layer table.")
_RUNS = flags.DEFINE_integer("runs", 20, "Timed runs per model.")


class _Person:
    """The person's serving function, fp32 model, calibration and parity inputs."""

    def __init__(self, path: str):
        import tensorflow as tf

        from tfhead import export
        from tfhead.edge import Invoker, model_file
        from tfhead.face import landmark_image
        from tfhead.models.person import PersonModel

        self.model = PersonModel.load(path)
        self.inputs = export.export_inputs(self.model, calibration_count=64, parity_count=8)
        self.names = model_file.input_names(self.model.warp_guidance)
        self.serve = export.serving_function(self.model)
        self.fp32 = export.convert(self.serve, "fp32", None, self.model.generator)
        self.fp32_invoker = Invoker(self.fp32, 2, self.names)
        self.floats = [landmark_image.to_model_range(np.asarray(x))
                       for x in self.inputs.calibration]
        # The debugger feeds its interpreters a list in their input order; the converter's
        # calibration takes a dict by signature name.
        details = tf.lite.Interpreter(model_content=self.fp32).get_input_details()
        self.order = [next(i for i, n in enumerate(self.names) if n in d["name"])
                      for d in details]

    def by_name(self):
        for i in range(len(self.floats[0])):
            yield {n: x[i][None] for n, x in zip(self.names, self.floats)}

    def in_order(self):
        for i in range(len(self.floats[0])):
            yield [self.floats[j][i][None] for j in self.order]

    def debugger(self, float_ops, float_nodes=()):
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_concrete_functions([self.serve],
                                                                     self.model.generator)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = self.by_name
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
        options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(float_ops) or None, denylisted_nodes=list(float_nodes) or None,
            fully_quantize=True)
        return tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=self.in_order, debug_options=options)

    def quality(self, content: bytes) -> dict:
        from tfhead import export
        from tfhead.edge import Invoker

        invoker = Invoker(content, 2, self.names)
        numbers = {name: export.parity(lambda *x: self.fp32_invoker(*x), invoker,
                                       self.inputs.parity[name]) for name in ("person", "faces")}
        x = [one[:1] for one in self.inputs.parity["person"]]
        numbers["ms"] = median_ms(lambda: invoker(*x), _RUNS.value)
        return numbers


def layer_errors(debugger) -> list[dict]:
    """The debugger's per-layer statistics, worst rmse/scale first."""
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    for row in rows:
        row["error"] = float(np.sqrt(float(row["mean_squared_error"])) / float(row["scale"]))
    return sorted(rows, key=lambda row: -row["error"])


def main(argv):
    del argv
    import logging

    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")  # the debugger's tf.lite.Interpreter deprecation notes
    if not os.path.isdir(_PERSON.value):
        raise SystemExit(f"--person={_PERSON.value} does not exist; run `make demo` first or pass "
                         "a fine-tuned person checkpoint.")
    from tfhead import export

    person = _Person(_PERSON.value)
    fp32_ms = median_ms(lambda: person.fp32_invoker(*[x[:1] for x in
                                                      person.inputs.parity["person"]]),
                        _RUNS.value)
    variants, tables = [], {}
    full = person.debugger(())
    tables["fully int8"] = layer_errors(full)
    variants.append(("fully int8", full.get_nondebug_quantized_model()))
    ours = person.debugger(export.INT8_FLOAT_OPS)
    tables["tfhead int8"] = errors = layer_errors(ours)
    variants.append(("tfhead int8 (norms, attention, sums in float)",
                     ours.get_nondebug_quantized_model()))
    for keep in map(int, _KEEP.value):
        nodes = [row["tensor_name"] for row in errors if row["op_name"] == "CONV_2D"][:keep]
        variants.append((f"tfhead int8 + the {keep} worst convolutions in float",
                         person.debugger(export.INT8_FLOAT_OPS, nodes)
                         .get_nondebug_quantized_model()))

    print(f"\nperson: {_PERSON.value} ({person.model.preset}, "
          f"{'warp-guided' if person.model.warp_guidance else 'paper generator'}); "
          f"fp32 {len(person.fp32) / 1024:.0f} kB, {fp32_ms:.1f} ms (2 threads)\n")
    print("| int8 variant | SSIM vs fp32, person | faces | max abs diff, person | kB "
          "| × fp32 size | ms (2 threads) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, content in variants:
        q = person.quality(content)
        print(f"| {label} | {q['person']['ssim']:.4f} | {q['faces']['ssim']:.4f} "
              f"| {q['person']['max_abs']:.3f} | {len(content) / 1024:.0f} "
              f"| {len(content) / len(person.fp32):.3f} | {q['ms']:.1f} |")
    for label, rows in tables.items():
        print(f"\n{label}: per-layer error, rmse / scale over the calibration inputs "
              f"({len(rows)} quantized ops; worst {_TOP.value}; median "
              f"{np.median([r['error'] for r in rows]):.3f})\n")
        print("| op | tensor | rmse / scale | scale |")
        print("|---|---|---:|---:|")
        for row in rows[:_TOP.value]:
            print(f"| {row['op_name']} | `{row['tensor_name'][:60]}` | {row['error']:.3f} "
                  f"| {float(row['scale']):.4g} |")


if __name__ == "__main__":
    app.run(main)
