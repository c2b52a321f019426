"""Exported per-person models: file size and latency against the Keras generator and the floor.

    python benchmarks/export.py                                   # small128 and paper256
    python benchmarks/export.py --presets=small128 --runs=30
    python benchmarks/export.py --person=demo_out/astronaut_person  # a real fine-tuned person

For each preset a person model with random weights (ψ = P ê of a random ê; latency does not depend
on the values) is exported in every mode with `tfhead.export` (parity measured, not enforced: the
table reports it). Latency is the median wall time of one frame at batch 1 after warm-up: the Keras
person generator under `tf.function` (TensorFlow's own threads), and the LiteRT interpreter with 1
and 2 threads (XNNPACK).

The floor is the model's FLOPs (`tfhead.models.flops`: every convolution and matrix product of
the serving graph) divided by this machine's fp32 rate, measured as the throughput of a large 3×3
convolution in TensorFlow (oneDNN) with 1 and with 2 intra-op threads (docs/design.md §7: NumPy's
BLAS understates it), before and after the models; the better of the two is used, as the rate
drifts on a shared machine (both are printed).
"latency / floor" says how far a model is from what the arithmetic alone would cost.
"""

import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _flatbuffer
import numpy as np
from _timing import median_ms
from absl import app, flags

_PRESETS = flags.DEFINE_list("presets", ["small128", "paper256"], "Presets to measure.")
_PERSON = flags.DEFINE_string("person", None, "Also measure this person checkpoint.")
_RUNS = flags.DEFINE_integer("runs", 15, "Timed runs per model and thread count (after warm-up).")
_RATE_THREADS = flags.DEFINE_integer("conv_rate_threads", 0, "Internal: print the conv rate with "
                                     "this many TensorFlow threads and exit.")

THREADS = (1, 2)
_CONV = dict(size=64, channels=512)   # 2·64²·9·512² = 19.3 GFLOP per call


def _conv_rate(threads: int, runs: int = 7) -> float:
    """GFLOP/s of a large fp32 3×3 convolution in TensorFlow with `threads` intra-op threads."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    s, c = _CONV["size"], _CONV["channels"]
    x = tf.random.normal([1, s, s, c])
    w = tf.random.normal([3, 3, c, c])
    conv = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
    for _ in range(2):
        conv(x, w).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        conv(x, w).numpy()
        times.append(time.perf_counter() - start)
    return 2 * s * s * 9 * c * c / statistics.median(times) / 1e9


def conv_rate(threads: int) -> float:
    """The rate measured in a fresh process (TensorFlow's thread pools are fixed at start-up)."""
    run = subprocess.run([sys.executable, __file__, f"--conv_rate_threads={threads}"],
                         capture_output=True, text=True, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def random_person(preset: str):
    from tfhead import config as config_lib
    from tfhead.face import procedural
    from tfhead.face.source import PersonSource
    from tfhead.models import networks
    from tfhead.models.person import PersonGenerator, PersonModel

    config = config_lib.get_preset(preset)
    generator = networks.Generator(**networks.generator_kwargs(config.model))
    generator.build()
    embedding = np.random.default_rng(0).normal(size=(1, config.model.embedding_dim))
    psi = generator.project(embedding.astype("float32"))[0]
    r = config.model.resolution
    identity = procedural.random_identity(0)
    source = None
    if config.model.warp_guidance:  # a guided model warps its source photo: a generated face
        photo_points = procedural.procedural_landmarks(identity, 2 * r)
        source = PersonSource(procedural.render_face(identity, photo_points, 2 * r),
                              photo_points, r)
        reference = source.landmarks
    else:
        reference = procedural.procedural_landmarks(identity, r)
    return PersonModel(config, PersonGenerator.from_meta_generator(generator, psi), preset,
                       reference, "feed-forward", source=source)


def measure(model, label: str, runs: int) -> list[dict]:
    import tensorflow as tf

    from tfhead import export
    from tfhead.edge import Invoker, model_file
    from tfhead.models import flops

    r = model.resolution
    names = model_file.input_names(model.warp_guidance)  # a warp-guided person has two inputs
    serve = export.serving_function(model)
    gflop = flops.count_flops(lambda *x: serve(*x)[0], [tf.TensorSpec([1, r, r, 3])] * len(names))
    gflop /= 1e9
    inputs = export.export_inputs(model, calibration_count=32, parity_count=4)
    x = [one[:1] for one in inputs.parity["person"]]
    keras_fn = tf.function(
        lambda *y: model.generator(y if model.warp_guidance else y[0], training=False))
    constants = [tf.constant(one) for one in x]
    keras_ms = median_ms(lambda: keras_fn(*constants).numpy(), runs)
    rows = [{"model": label, "mode": "Keras tf.function", "gflop": gflop, "size": None,
             "ms": {2: keras_ms}, "ssim": None}]
    loose = export.Thresholds(float("inf"), float("inf"), -1.0)
    for mode in export.QUANTIZATIONS:
        result = export.export(model, mode, None, inputs, loose)
        ms = {}
        for threads in THREADS:
            invoker = Invoker(result.content, threads, names)
            ms[threads] = median_ms(lambda: invoker(*x), runs)
        rows.append({"model": label, "mode": f"TFLite {mode}", "gflop": gflop,
                     "size": result.size_bytes, "ms": ms,
                     "ssim": result.parity["person"]["ssim"],
                     "outside": result.undelegated,
                     "parts": _flatbuffer.sizes(result.content)})
        print(f"  {label} {mode}: {result.size_bytes / 2**20:.2f} MiB, "
              + ", ".join(f"{t} thread(s) {ms[t]:.1f} ms" for t in THREADS), flush=True)
    return rows


def main(argv):
    del argv
    if _RATE_THREADS.value:
        print(_conv_rate(_RATE_THREADS.value))
        return
    import logging

    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # the converter's INFO chatter
    before = {t: conv_rate(t) for t in THREADS}
    rows = []
    for preset in _PRESETS.value:
        rows += measure(random_person(preset), preset, _RUNS.value)
    if _PERSON.value:
        from tfhead.models.person import PersonModel

        rows += measure(PersonModel.load(_PERSON.value), os.path.basename(_PERSON.value),
                        _RUNS.value)
    after = {t: conv_rate(t) for t in THREADS}
    # The machine's rate drifts (on shared hosts by tens of per cent within minutes): it is
    # measured before and after the models, and the floor uses the better of the two — the
    # rate the machine showed it can reach during this run.
    rates = {t: max(before[t], after[t]) for t in THREADS}
    for row in rows:
        row["floors"] = {t: 1e3 * row["gflop"] / rates[t] for t in THREADS}
    print("fp32 rate of a 64²×512→512 3×3 convolution in TensorFlow, before / after the models: "
          + ", ".join(f"{t} thread(s) {before[t]:.0f} / {after[t]:.0f} GFLOP/s" for t in THREADS))
    print()
    print("| model | GFLOP | runtime | file MiB | 1 thread ms | ×floor | 2 threads ms | ×floor "
          "| SSIM vs Keras | ops outside XNNPACK |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        cells = []
        for t in THREADS:
            if t in row["ms"]:
                cells += [f"{row['ms'][t]:.1f}", f"{row['ms'][t] / row['floors'][t]:.1f}"]
            else:
                cells += ["", ""]
        size = f"{row['size'] / 2**20:.2f}" if row["size"] else ""
        ssim = f"{row['ssim']:.4f}" if row["ssim"] is not None else ""
        outside = ", ".join(row.get("outside", [])) or ("none" if "outside" in row else "")
        print(f"| {row['model']} | {row['gflop']:.2f} | {row['mode']} | {size} | "
              + " | ".join(cells) + f" | {ssim} | {outside} |")
    print()
    print("Floors (FLOPs / measured conv rate): " + "; ".join(
        f"{label}: " + ", ".join(f"{t} thread(s) {floors[t]:.1f} ms" for t in THREADS)
        for label, floors in {r["model"]: r["floors"] for r in rows}.items()))
    print("Keras tf.function runs with TensorFlow's default threads (both cores); its ×floor is "
          "against the 2-thread floor.")
    print()
    print("| model | runtime | file kB | × fp32 file | constants kB | × fp32 constants "
          "| of them int8 kB | quantization parameters kB | metadata kB | graph tables and "
          "names kB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    fp32 = {r["model"]: r["parts"] for r in rows if r["mode"] == "TFLite fp32"}
    for row in rows:
        if "parts" not in row:
            continue
        parts, base = row["parts"], fp32[row["model"]]
        constants = _flatbuffer.weights(parts)
        print(f"| {row['model']} | {row['mode']} | {parts['total'] / 1024:.0f} "
              f"| {parts['total'] / base['total']:.4f} | {constants / 1024:.0f} "
              f"| {constants / _flatbuffer.weights(base):.4f} "
              f"| {parts.get('const INT8', 0) / 1024:.0f} "
              f"| {parts.get('quantization', 0) / 1024:.1f} "
              f"| {parts.get('metadata', 0) / 1024:.1f} "
              f"| {(parts['rest'] + parts.get('names', 0)) / 1024:.1f} |")
    print("Quantization parameters: a float32 scale and an int64 zero point per tensor or per "
          "output channel, which every int8 file needs beside its weights.")


if __name__ == "__main__":
    app.run(main)
