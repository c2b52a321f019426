"""Speed and peak memory of one meta-learning iteration (E+G step + d_steps D steps).

    python benchmarks/train_step.py                         # tiny and small128, every mode
    python benchmarks/train_step.py --presets=small128 --steps=10
    python benchmarks/train_step.py --presets=demo --modes=tf.function --profile   # where time goes
    python benchmarks/train_step.py --presets=demo_finetune --modes=tf.function --profile
    git worktree add /tmp/before 5339755          # the code before issue 18's training work
    python benchmarks/train_step.py --presets=demo,demo_finetune \
        --modes=tf.function,tf.function+bf16 --baseline=/tmp/before --rounds=3   # speed-up

Each (preset, mode) runs in its own process so that its peak resident memory (ru_maxrss) is its
own. Modes: `eager` (the step as plain Python), `tf.function`, `tf.function+xla` (each
replica's step compiled by XLA) and `tf.function+bf16` (the `mixed_bfloat16` policy of
`train/meta_train.py --precision`; this CPU has AVX512_BF16). Batches are random tensors of the
preset's batch size and K (the data pipeline is not timed). The content loss is the real L_CNT's
computation — VGG19 and VGGFace to conv5_1 — with random weights (`content_loss=random_vgg`), so
the cost is that of a real run. Times are medians over `--steps` iterations after `--warmup`
(which includes tracing/compiling).

The `demo` preset is the demo's meta-learning configuration (`tfhead.demo.demo_config`: small128 at
16→128 channels, warp-guided, batch 4 × K 4, one D step, pixel L1 + dlib's face network as the
content loss). `--profile` traces 3 more steps with TensorFlow's profiler and prints where their
time goes — per op type and per network (E, G, D, the content network; forward and gradient) —
including the time a core sat idle (read with TensorFlow's own profiler tools, a private module).
`demo_finetune` is one fine-tuning step of that model instead (`tfhead.training.finetune.FineTuner`:
the person's G and ψ' on L_CNT + L_ADV, then D; batch 4 with their warps, random weights); the
host's part of fine-tuning — drawing the batch, ~17 ms against ~355 ms per step on the demo's
astronaut (BUILD_NOTES) — is not timed.

`--baseline=<checkout>` measures the same configurations with an earlier tfhead too (a `git
worktree` of an older commit whose `benchmarks/train_step.py` knows the presets and modes asked
for), alternating the two trees' processes for `--rounds` rounds, and prints the speed-up of
each configuration against the baseline's float32 `tf.function` step, medians over the rounds:
before and after measured in one run on this machine, whose speed moves by up to 2× between
hours.
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
_PROFILE = flags.DEFINE_bool("profile", False, "Also print where a step's time goes.")
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout
_BASELINE = flags.DEFINE_string(
    "baseline", None, "A checkout of an earlier tfhead (`git worktree add /tmp/before <commit>`) "
    "to measure in the same run, alternating with this one; prints the speed-up.")
_ROUNDS = flags.DEFINE_integer("rounds", 1, "With --baseline: alternating rounds (medians are "
                               "over rounds).", lower_bound=1)


def measure(preset: str, mode: str, steps: int, warmup: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from tfhead import config as cfg
    from tfhead.training import distribute, feature_networks, meta_learning

    if preset in ("demo", "demo_finetune"):
        from tfhead import demo

        config = demo.demo_config()
    else:
        config = cfg.get_preset(preset, {"train.content_loss": "random_vgg"})
    rng = np.random.default_rng(0)
    b, k, r = config.train.batch_size, config.train.k_shots, config.model.resolution

    def images(*shape):
        return tf.constant(rng.uniform(-1, 1, shape).astype(np.float32))

    with distribute.precision_policy("mixed_bfloat16" if mode.endswith("bf16") else "float32"):
        content = feature_networks.build_content_networks(config.train.content_loss,
                                                          config.model.resolution)
        if preset == "demo_finetune":
            step, k = _finetune_step(config, content, images, mode), 1
        else:
            learner = meta_learning.MetaLearner(
                config, num_videos=1000, content_networks=content,
                jit_compile=mode.endswith("xla"), run_eagerly=mode == "eager")
            batch = {"frames": images(b, k, r, r, 3), "landmark_images": images(b, k, r, r, 3),
                     "target_frame": images(b, r, r, 3),
                     "target_landmark_image": images(b, r, r, 3),
                     "video_index": tf.constant(rng.integers(0, 1000, b), tf.int32)}
            if config.model.warp_guidance:  # G also takes the source warped to the target
                batch["target_warp"] = images(b, r, r, 3)

            def step():
                return float(learner.train_step(batch)["loss/g/total"])
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    profile = None
    if _PROFILE.value:
        import tempfile

        with tempfile.TemporaryDirectory() as logdir:
            tf.profiler.experimental.start(logdir)
            for _ in range(3):
                step()
            tf.profiler.experimental.stop()
            profile = _breakdown(logdir, steps=3)
    return {"profile": profile, "preset": preset, "mode": mode, "batch": b, "k": k,
            "d_steps": config.train.d_steps,
            "step_ms": 1000 * seconds, "steps_per_s": 1 / seconds,
            "images_per_s": b / seconds, "warmup_s": first,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


_NETWORKS = (("embedder", "E"), ("generator", "G"), ("discriminator", "D"), ("face", "content"),
             ("vgg", "content"))


def _finetune_step(config, content, images, mode: str):
    """One `FineTuner` step of a person made from random-weight networks, as a callable."""
    import numpy as np
    import tensorflow as tf

    from tfhead.models import networks
    from tfhead.models.person import PersonGenerator
    from tfhead.training import finetune

    if mode not in ("tf.function", "tf.function+bf16"):
        raise ValueError(f"demo_finetune runs under tf.function only, not {mode!r}.")
    _, generator, discriminator = networks.build_networks(config.model, num_videos=1)
    embedding = np.random.default_rng(1).normal(size=(config.model.embedding_dim,))
    embedding = embedding.astype("float32")
    person = PersonGenerator.from_meta_generator(generator, generator.project(embedding[None])[0])
    person_d = networks.PersonDiscriminator.from_discriminator(discriminator, embedding)
    tuner = finetune.FineTuner(config, person, person_d, content)
    b, r = config.train.batch_size, config.model.resolution
    batch = [images(b, r, r, 3) for _ in range(3 if config.model.warp_guidance else 2)]

    def step():
        return float(tf.reduce_mean(tuner.step(*batch)["loss/g/total"]))
    return step


def _breakdown(logdir: str, steps: int) -> dict:
    """ms per step by op type and by (network, forward/gradient) from a profiler trace."""
    import collections
    import glob

    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    path = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))[0]
    data, ok = plugin.xspace_to_tools_data([path], "framework_op_stats", {})
    if not ok:
        return {}
    table = json.loads(data)[0]
    names = [c["id"] for c in table["cols"]]
    rows = [{k: (c or {}).get("v") for k, c in zip(names, r["c"])} for r in table["rows"]]
    by_type, by_network = collections.Counter(), collections.Counter()
    for row in rows:
        ms = row["total_self_time"] / 1e3 / steps
        by_type[row["type"]] += ms
        op = (row["operation"] or "").lower()
        network = next((label for key, label in _NETWORKS if key in op),
                       "idle" if row["type"] == "IDLE" else "other")
        part = "" if network == "idle" else (" gradient" if "grad" in op else " forward")
        by_network[network + part] += ms
    return {"by_type": by_type.most_common(12), "by_network": by_network.most_common(),
            "total_ms": sum(by_type.values())}


def _run_one(tree: str, preset: str, mode: str, profile: bool = False) -> dict | None:
    """One configuration measured in its own process with the tfhead checkout at `tree`."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [tree] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    result = subprocess.run(
        [sys.executable, os.path.join(tree, "benchmarks", "train_step.py"),
         f"--one={preset},{mode}", f"--steps={_STEPS.value}", f"--warmup={_WARMUP.value}",
         f"--profile={profile}"], capture_output=True, text=True, env=env, cwd=tree)
    if result.returncode != 0:
        print(f"{preset} {mode} ({tree}): failed\n{result.stderr[-2000:]}", file=sys.stderr)
        return None
    print(f"measured {preset} {mode} ({tree})", file=sys.stderr, flush=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _compare(baseline: str) -> None:
    """Every (preset, mode) in the baseline checkout and in this one, alternating by round."""
    here = _HERE
    baseline = os.path.abspath(baseline)
    if not os.path.isfile(os.path.join(baseline, "benchmarks", "train_step.py")):
        raise app.UsageError(f"--baseline={baseline} is not a tfhead checkout (no "
                             "benchmarks/train_step.py); make one with `git worktree add "
                             "/tmp/before <commit>`.")
    ms = {}  # (preset, mode, tree) -> [step ms per round]
    for round_ in range(_ROUNDS.value):
        order = [("before", baseline), ("now", here)]
        if round_ % 2:  # alternate which tree goes first
            order.reverse()
        for preset in _PRESETS.value:
            for mode in _MODES.value:
                for name, tree in order:
                    row = _run_one(tree, preset, mode)
                    if row is not None:
                        ms.setdefault((preset, mode, name), []).append(row["step_ms"])
    print(f"before: {baseline}; now: {here}; {_ROUNDS.value} alternating round(s), medians of "
          f"{_STEPS.value} steps each")
    print("| preset | mode | before ms / step | now ms / step | × before, same mode | "
          "× before, float32 tf.function |")
    print("|---|---|---|---|---:|---:|")
    for preset in _PRESETS.value:
        reference = ms.get((preset, "tf.function", "before"))
        for mode in _MODES.value:
            before, now = ms.get((preset, mode, "before")), ms.get((preset, mode, "now"))

            def cell(times):
                if not times:
                    return "failed"
                return (" / ".join(f"{t:.0f}" for t in times)
                        + f" (median {statistics.median(times):.0f})")

            same = (f"{statistics.median(before) / statistics.median(now):.2f}"
                    if before and now else "")
            ref = (f"{statistics.median(reference) / statistics.median(now):.2f}"
                   if reference and now else "")
            print(f"| {preset} | {mode} | {cell(before)} | {cell(now)} | {same} | {ref} |")


def main(argv):
    del argv
    if _ONE.value:
        preset, mode = _ONE.value.split(",")
        print(json.dumps(measure(preset, mode, _STEPS.value, _WARMUP.value)))
        return
    if "demo_finetune" in _PRESETS.value and not set(_MODES.value) <= {"tf.function",
                                                                       "tf.function+bf16"}:
        raise app.UsageError("--presets=demo_finetune runs with --modes=tf.function and/or "
                             f"tf.function+bf16 only, not {_MODES.value}.")
    if _BASELINE.value:
        _compare(_BASELINE.value)
        return
    rows = []
    for preset in _PRESETS.value:
        for mode in _MODES.value:
            row = _run_one(_HERE, preset, mode, _PROFILE.value)
            if row is not None:
                rows.append(row)
    print("| preset | mode | batch × K | d_steps | ms / step | steps/s | images/s | "
          "first steps (s) | peak RSS (MiB) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['preset']} | {r['mode']} | {r['batch']} × {r['k']} | {r['d_steps']} | "
              f"{r['step_ms']:.1f} | {r['steps_per_s']:.2f} | {r['images_per_s']:.2f} | "
              f"{r['warmup_s']:.1f} | {r['peak_rss_mib']:.0f} |")
    for r in rows:
        if not r.get("profile"):
            continue
        p = r["profile"]
        print(f"\n{r['preset']} {r['mode']}: where a step's time goes (self time summed over "
              f"threads, {p['total_ms']:.0f} ms per step; idle = a core waiting)\n")
        print("| op type | ms / step | share | | network | ms / step | share |")
        print("|---|---:|---:|---|---|---:|---:|")
        for i in range(max(len(p["by_type"]), len(p["by_network"]))):
            cells = []
            for part in ("by_type", "by_network"):
                if i < len(p[part]):
                    name, ms = p[part][i]
                    cells.append(f"{name} | {ms:.1f} | {100 * ms / p['total_ms']:.1f} %")
                else:
                    cells.append(" | | ")
            print(f"| {cells[0]} | | {cells[1]} |")


if __name__ == "__main__":
    app.run(main)
