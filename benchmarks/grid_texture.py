r"""The grid texture of a briefly trained generator: how strong it is, per meta-learning run.

    .venv/bin/python benchmarks/grid_texture.py \
        --metas=demo=demo_out/work/meta,paper_g=/tmp/meta_paper_g --finetune_steps=0,150

For every meta-learning workdir (`name=path`, any config) and every number of fine-tuning steps
(0 = the feed-forward person, ψ = P ê), it makes a person of skimage's astronaut photo
(`finetune.finetune`, the default pairs) and renders its model-resolution frames on 16 poses of a
motion track around the photo's landmarks (the first is the photo's own). It prints

    | meta | upsampling | warp-guided | steps | grid 2 px | grid 4 px | grid 8 px | L1 to the photo (pose 0) |

where "grid P px" is `tfhead.evaluation.metrics.block_pattern` at period P, the mean over the
frames (≈ 1: no grid; the astronaut crop itself is in the first row), and the L1 is the mean
absolute difference in grey levels between the pose-0 frame and the photo's crop. A PNG per
person with the photo's crop and three frames, enlarged ×3 nearest so the texture shows, goes to
`--out_dir`.

What it found (docs/design.md §3, BUILD_NOTES "The grid texture"): three nearest ×2 upsamplings
in G leave a block pattern of 2, 4 and 8 px that 600 CPU meta-learning steps do not train away;
bilinear upsampling (`model.generator_upsampling=bilinear`) does not make it. Per run: ~10 s to
load plus ~0.5 s per fine-tuning step of the demo's model on 2 cores.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
from absl import app, flags

from tfhead.evaluation import metrics
from tfhead.face import landmarks as landmarks_lib
from tfhead.face import motion, shots

_METAS = flags.DEFINE_list("metas", None, "Meta-learning workdirs as name=path (comma-separated).",
                           required=True)
_STEPS = flags.DEFINE_list("finetune_steps", ["0", "150"],
                           "Fine-tuning steps per person (0: feed-forward).")
_POSES = flags.DEFINE_integer("poses", 16, "Frames rendered per person.", lower_bound=1)
_OUT_DIR = flags.DEFINE_string("out_dir", "/tmp/tfhead_grid_texture", "Folder for the PNGs.")
_SEED = flags.DEFINE_integer("seed", 0, "Fine-tuning seed.")

PERIODS = (2, 4, 8)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import skimage.data

    from tfhead.training import feature_networks, finetune, meta_learning

    metas = []
    for item in _METAS.value:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise app.UsageError(f"--metas takes name=path items, got {item!r}.")
        metas.append((name, path))
    try:
        steps_list = [int(s) for s in _STEPS.value]
    except ValueError:
        raise app.UsageError(f"--finetune_steps must be integers, got {_STEPS.value}.") from None
    if any(s < 0 for s in steps_list):
        raise app.UsageError("--finetune_steps must be >= 0.")
    os.makedirs(_OUT_DIR.value, exist_ok=True)
    detector = landmarks_lib.LandmarkDetector()
    photo = skimage.data.astronaut()

    header = ["meta", "upsampling", "warp-guided", "steps"] + [f"grid {p} px" for p in PERIODS] + [
        "L1 to the photo (pose 0)"]
    rows = []
    reference_done = set()
    for name, path in metas:
        try:
            meta = meta_learning.load_meta_model(path)
        except meta_learning.MetaCheckpointError as e:
            raise app.UsageError(f"--metas {name}={path}: {e}") from None
        model = meta.config.model
        frames = shots.person_frames([("source.png", photo)], model.resolution, detector)
        crop = frames.frames[0]
        track = motion.motion_track(frames.landmarks[0], _POSES.value, seed=1)
        track[0] = frames.landmarks[0]
        if model.resolution not in reference_done:
            reference_done.add(model.resolution)
            grids = [float(metrics.block_pattern(crop, p)[0]) for p in PERIODS]
            rows.append([f"(the photo's {model.resolution}² crop)", "—", "—", "—"]
                        + [f"{g:.2f}" for g in grids] + ["0.0"])
            print(_row(rows[-1]), flush=True)
        content = feature_networks.build_content_networks(meta.config.train.content_loss,
                                                          model.resolution)
        for steps in steps_list:
            start = time.perf_counter()
            person = finetune.finetune(meta, frames, "astronaut", steps, content_networks=content,
                                       seed=_SEED.value, log_every=10**9)
            rendered = person.render(track)
            grids = [float(metrics.block_pattern(rendered, p).mean()) for p in PERIODS]
            l1 = float(np.abs(rendered[0].astype(np.float64).mean(-1)
                              - crop.astype(np.float64).mean(-1)).mean())
            rows.append([name, model.generator_upsampling, "yes" if model.warp_guidance else "no",
                         steps] + [f"{g:.2f}" for g in grids] + [f"{l1:.1f}"])
            print(_row(rows[-1]) + f"  ({time.perf_counter() - start:.0f} s)", flush=True)
            strip = np.concatenate([crop] + [rendered[i] for i in (0, len(track) // 2, -1)], 1)
            out = os.path.join(_OUT_DIR.value, f"{name}_steps{steps}.png")
            cv2.imwrite(out, cv2.cvtColor(cv2.resize(strip, None, fx=3, fy=3,
                                                     interpolation=cv2.INTER_NEAREST),
                                          cv2.COLOR_RGB2BGR))
    print()
    print(_row(header))
    print("|---" * len(header) + "|")
    for row in rows:
        print(_row(row))
    print(f"\nPNG strips (photo crop | poses 0, {_POSES.value // 2}, {_POSES.value - 1}; ×3 nearest) "
          f"in {_OUT_DIR.value}", file=sys.stderr)


if __name__ == "__main__":
    app.run(main)
