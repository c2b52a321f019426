"""Parameters, counted GMACs and generator latency per preset.

    python benchmarks/networks.py                      # tiny, small128, paper256
    python benchmarks/networks.py --presets=paper256 --runs=20

GMACs are counted by TensorFlow's graph profiler on the frozen forward pass at batch 1
(`tfhead.models.flops`); the embedder and discriminator are counted per frame. Latency is the median wall
time of the generator's forward pass (`tf.function`, batch 1, inference mode, embedding given) on
this machine, after warm-up.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from absl import app, flags

from tfhead import config as cfg
from tfhead.models import flops, networks

_PRESETS = flags.DEFINE_list("presets", ["tiny", "small128", "paper256"], "Presets to measure.")
_RUNS = flags.DEFINE_integer("runs", 15, "Timed generator runs per preset (after 3 warm-up runs).")


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def measure(preset: str, runs: int) -> dict:
    model = cfg.get_preset(preset).model
    embedder, generator, discriminator = networks.build_networks(model, num_videos=1)
    r, e = model.resolution, model.embedding_dim
    image = tf.TensorSpec([1, r, r, 3], tf.float32)
    warp = (image,) if model.warp_guidance else ()  # a warp-guided G also takes the warp
    macs = {
        "E": flops.count_macs(lambda x, y: embedder((x, y)), [image, image]),
        "G": flops.count_macs(lambda *x: generator(x), [image, tf.TensorSpec([1, e]), *warp]),
        "D": flops.count_macs(
            lambda x, y: discriminator((x, y, tf.zeros([1], tf.int32)))[0], [image, image]),
    }
    forward = tf.function(lambda *x: generator(x, training=False))
    landmarks = tf.random.uniform([1, r, r, 3], -1, 1)
    embedding = tf.random.normal([1, e])
    inputs = (landmarks, embedding) + ((landmarks,) if model.warp_guidance else ())
    for _ in range(3):
        forward(*inputs).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        forward(*inputs).numpy()
        times.append(time.perf_counter() - start)
    return {
        "preset": preset, "resolution": r,
        "params": {n: _trainable(m) for n, m in
                   (("E", embedder), ("G", generator), ("D", discriminator))},
        "gmacs": {n: v / 1e9 for n, v in macs.items()},
        "g_ms": 1e3 * statistics.median(times),
    }


def main(argv):
    del argv
    rows = [measure(p, _RUNS.value) for p in _PRESETS.value]
    print(f"\nTensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, "
          f"threads intra/inter = {tf.config.threading.get_intra_op_parallelism_threads()}/"
          f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = all)\n")
    print("| preset | res | params E | params G | params D (1 video) | GMAC E | GMAC G | GMAC D "
          "| G forward, median ms (batch 1) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        p, g = row["params"], row["gmacs"]
        print(f"| {row['preset']} | {row['resolution']}² | {p['E']:,} | {p['G']:,} | {p['D']:,} "
              f"| {g['E']:.3f} | {g['G']:.3f} | {g['D']:.3f} | {row['g_ms']:.1f} |")


if __name__ == "__main__":
    app.run(main)
