"""Where the exported generator's time goes: TFLite fp32 and Keras timed for variants of its graph.

    python benchmarks/export_ablation.py                     # paper256, ~6 min on 2 cores
    python benchmarks/export_ablation.py --preset=small128 --variants=as_is,no_attention --timed_runs=20

Each variant is built in a fresh process (the patches below change the network's code before it
is built), exported in fp32 with `tfhead.export` and timed twice, alternating TFLite (LiteRT,
XNNPACK, 2 threads) and the Keras person generator under `tf.function`:

  as_is          the generator as exported
  affine_norm    AdaIN without its statistics: y = x·γ + β (a lower bound for any fusion of the norm)
  scale_shift    AdaIN as one per-channel scale and shift computed from the statistics:
                 y = x·s + t with s = γ / √(σ² + ε), t = β − μ·s (5 passes over x instead of 7)
  no_attention   self-attention blocks replaced by the identity

The variants change what the network computes; only the timings mean something (a random-weight
person, as in `benchmarks/export.py`). A variant faster than `as_is` by more than the spread of the
two timings shows where a graph change would pay.
"""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

VARIANTS = ("as_is", "affine_norm", "scale_shift", "no_attention")
_PRESET = flags.DEFINE_string("preset", "paper256", "Preset of the random-weight person.")
_VARIANTS = flags.DEFINE_list("variants", list(VARIANTS), f"Variants to time, of {VARIANTS}.")
_RUNS = flags.DEFINE_integer("timed_runs", 12, "Timed runs per measurement.")
_ONE = flags.DEFINE_string("one", None, "Internal: time this variant in this process and print it.")


def _patch(variant: str) -> None:
    from keras import ops

    from tfhead.models import blocks
    from tfhead.models import ops as tfops

    if variant in ("affine_norm", "scale_shift"):
        def adain(x, gamma, beta, epsilon=1e-5):
            gamma = tfops._as_nhwc_vector(ops.cast(gamma, "float32"))
            beta = tfops._as_nhwc_vector(ops.cast(beta, "float32"))
            if variant == "affine_norm":
                return x * gamma + beta
            mean, variance = tfops.instance_moments(x)
            scale = gamma * ops.rsqrt(variance + epsilon)
            return x * scale + (beta - mean * scale)

        tfops.adain = adain  # blocks call tfops.adain at run time
    elif variant == "no_attention":
        blocks.SelfAttention.call = lambda self, x, training=False: x
    elif variant != "as_is":
        raise SystemExit(f"Unknown variant {variant!r}; valid: {list(VARIANTS)}.")


def _time_one(variant: str, preset: str, runs: int) -> str:
    _patch(variant)
    import tensorflow as tf
    from _timing import median_ms
    from export import random_person

    from tfhead import export
    from tfhead.edge import Invoker, model_file

    model = random_person(preset)
    inputs = export.export_inputs(model, calibration_count=2, parity_count=2)
    loose = export.Thresholds(float("inf"), float("inf"), -1.0)
    result = export.export(model, "fp32", None, inputs, loose)
    names = model_file.input_names(model.warp_guidance)
    x = [one[:1] for one in inputs.parity["person"]]
    invoker = Invoker(result.content, 2, names)
    keras_fn = tf.function(
        lambda *y: model.generator(y if model.warp_guidance else y[0], training=False))
    constants = [tf.constant(one) for one in x]
    times = []
    for _ in range(2):
        times.append(median_ms(lambda: invoker(*x), runs))
        times.append(median_ms(lambda: keras_fn(*constants).numpy(), runs))
    return " ".join(f"{t:.1f}" for t in times)


def main(argv):
    del argv
    if _ONE.value:
        print("TIMES", _time_one(_ONE.value, _PRESET.value, _RUNS.value), flush=True)
        return
    here = os.path.dirname(os.path.abspath(__file__))
    print(f"\n| {_PRESET.value} person generator, fp32 | TFLite ms (2 threads), twice "
          "| Keras tf.function ms, twice |")
    print("|---|---|---|")
    for variant in _VARIANTS.value:
        run = subprocess.run([sys.executable, os.path.join(here, "export_ablation.py"),
                              f"--one={variant}", f"--preset={_PRESET.value}",
                              f"--timed_runs={_RUNS.value}"], capture_output=True, text=True)
        line = [ln for ln in run.stdout.splitlines() if ln.startswith("TIMES ")]
        if run.returncode or not line:
            print(f"| {variant} | failed: {run.stderr.strip().splitlines()[-1:]} | |")
            continue
        t = [float(v) for v in line[0].split()[1:]]
        print(f"| {variant} | {t[0]:.1f} / {t[2]:.1f} | {t[1]:.1f} / {t[3]:.1f} |", flush=True)


if __name__ == "__main__":
    app.run(main)
