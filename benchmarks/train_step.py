"""Speed and peak memory of one meta-learning iteration (E+G step + d_steps D steps).

    python benchmarks/train_step.py                         # tiny and small128, every mode
    python benchmarks/train_step.py --presets=small128 --steps=10

Each (preset, mode) runs in its own process so that its peak resident memory (ru_maxrss) is its
own. Modes: `eager` (the step as plain Python), `tf.function`, and `tf.function+xla` (each
replica's step compiled by XLA). Batches are random tensors of the preset's batch size and K (the
data pipeline is not timed). The content loss is the real L_CNT's computation — VGG19 and VGGFace
to conv5_1 — with random weights (`content_loss=random_vgg`), so the cost is that of a real run.
Times are medians over `--steps` iterations after `--warmup` (which includes tracing/compiling).
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

_PRESETS = flags.DEFINE_list("presets", ["tiny", "small128"], "Presets to measure.")
_MODES = flags.DEFINE_list("modes", ["eager", "tf.function", "tf.function+xla"], "Modes.")
_STEPS = flags.DEFINE_integer("steps", 8, "Timed iterations per configuration.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed iterations first (tracing, compiling).")
_ONE = flags.DEFINE_string("one", None, "Internal: measure one 'preset,mode' and print JSON.")


def measure(preset: str, mode: str, steps: int, warmup: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from tfhead import config as cfg
    from tfhead.training import feature_networks, meta_learning

    config = cfg.get_preset(preset, {"train.content_loss": "random_vgg"})
    content = feature_networks.build_content_networks("random_vgg", config.model.resolution)
    learner = meta_learning.MetaLearner(
        config, num_videos=1000, content_networks=content, jit_compile=mode.endswith("xla"),
        run_eagerly=mode == "eager")
    rng = np.random.default_rng(0)
    b, k, r = config.train.batch_size, config.train.k_shots, config.model.resolution

    def images(*shape):
        return tf.constant(rng.uniform(-1, 1, shape).astype(np.float32))

    batch = {"frames": images(b, k, r, r, 3), "landmark_images": images(b, k, r, r, 3),
             "target_frame": images(b, r, r, 3), "target_landmark_image": images(b, r, r, 3),
             "video_index": tf.constant(rng.integers(0, 1000, b), tf.int32)}
    if config.model.warp_guidance:  # small128: G also takes the source warped to the target
        batch["target_warp"] = images(b, r, r, 3)
    start = time.perf_counter()
    for _ in range(warmup):
        float(learner.train_step(batch)["loss/g/total"])
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(learner.train_step(batch)["loss/g/total"])
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"preset": preset, "mode": mode, "batch": b, "k": k, "d_steps": config.train.d_steps,
            "step_ms": 1000 * seconds, "steps_per_s": 1 / seconds,
            "images_per_s": b / seconds, "warmup_s": first,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv):
    del argv
    if _ONE.value:
        preset, mode = _ONE.value.split(",")
        print(json.dumps(measure(preset, mode, _STEPS.value, _WARMUP.value)))
        return
    rows = []
    for preset in _PRESETS.value:
        for mode in _MODES.value:
            result = subprocess.run(
                [sys.executable, __file__, f"--one={preset},{mode}", f"--steps={_STEPS.value}",
                 f"--warmup={_WARMUP.value}"], capture_output=True, text=True)
            if result.returncode != 0:
                print(f"{preset} {mode}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"measured {preset} {mode}", file=sys.stderr, flush=True)
    print("| preset | mode | batch × K | d_steps | ms / step | steps/s | images/s | "
          "first steps (s) | peak RSS (MiB) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['preset']} | {r['mode']} | {r['batch']} × {r['k']} | {r['d_steps']} | "
              f"{r['step_ms']:.1f} | {r['steps_per_s']:.2f} | {r['images_per_s']:.2f} | "
              f"{r['warmup_s']:.1f} | {r['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    app.run(main)
