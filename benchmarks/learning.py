"""Does the method learn? The paper's claims on this machine's CPU, with procedural talking heads.

    python benchmarks/learning.py                         # ~10 min on 2 cores
    python benchmarks/learning.py --meta_steps=2000 --finetune_steps=200
    python benchmarks/learning.py --precision=mixed_bfloat16 --workdir=/tmp/tfhead_learning_bf16
    python benchmarks/learning.py --set=model.embedder_final_relu=false --workdir=/tmp/tfhead_learning_e

Meta-learns the demo's model (`small128` layout at 16→128 channels, 128-d embedding, warp-guided,
pixel L1 + dlib's face network + identity as the content loss: `tfhead.demo.demo_config`) on
procedural identities for `--meta_steps` steps (the time is printed; `--precision` as
`train/meta_train.py`'s), then evaluates on procedural identities that never appear in meta-learning, with
the self-reenactment protocol of `tfhead.evaluation.evaluate` at K = 1 and 8:

  (a) untrained      the same networks before any training, feed-forward (ψ = P ê)
  (b) feed-forward   the meta-learned model, ψ = P ê of the K shots
  (c) fine-tuned     the meta-learned model fine-tuned on the K shots

and prints SSIM, PSNR, CSIM and landmark error per (model, K), then whether the paper's claims
hold: (b) beats (a), (c) beats (b), 8 shots beat 1. Work is kept in --workdir and resumed.
"""

import logging
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/tfhead_learning", "Corpus, records and the run.")
_META_STEPS = flags.DEFINE_integer("meta_steps", 1200, "Meta-learning steps.")
_FT_STEPS = flags.DEFINE_integer("finetune_steps", 100, "Fine-tuning steps per video and K.")
_TRAIN_PERSONS = flags.DEFINE_integer("train_persons", 24, "Meta-learning identities.")
_TEST_PERSONS = flags.DEFINE_integer("test_persons", 6, "Held-out identities (one video each).")
_TARGETS = flags.DEFINE_integer("targets", 4, "Target frames per held-out video.")
_SET = flags.DEFINE_multi_string(
    "set", [], "Override of the demo's config, repeatable (as train/meta_train.py's --set): "
    "--set=model.embedder_final_relu=false. The corpus is shared; use a new --workdir.")
_PRECISION = flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16"],
                               "Meta-learning precision (`train/meta_train.py --precision`); "
                               "evaluation and fine-tuning run in float32. Use a --workdir per "
                               "precision.")

SHOTS = (1, 8)
HIGHER_IS_BETTER = {"ssim": True, "psnr": True, "csim": True, "landmark_error": False}


def _records(root: str, first_identity: int, persons: int, videos: int, frames: int,
             resolution: int, min_frames: int) -> str:
    from tfhead.data import corpora, preprocess

    clips, records = os.path.join(root, "clips"), os.path.join(root, "records")
    if not os.path.isfile(os.path.join(records, "manifest.json")):
        if not os.path.isdir(clips):
            corpora.make_procedural_corpus(clips + ".partial", persons=persons,
                                           videos_per_person=videos, frames_per_clip=frames + 4,
                                           size=192, first_identity=first_identity)
            os.replace(clips + ".partial", clips)
        preprocess.run(clips, records, preprocess.PreprocessOptions(
            resolution=resolution, frames_per_video=frames, videos_per_shard=16,
            min_frames=min_frames), workers=1, progress_bar=False)
    return records


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    import keras

    from tfhead import config as config_lib
    from tfhead import demo
    from tfhead.evaluation import evaluate
    from tfhead.models import networks
    from tfhead.training import meta_learning

    try:
        config = demo.demo_config().override(config_lib.parse_overrides(_SET.value))
    except config_lib.ConfigError as e:
        raise app.UsageError(f"--set: {e}") from None
    r = config.model.resolution
    work = os.path.abspath(_WORKDIR.value)
    frames = max(SHOTS) + _TARGETS.value
    train = _records(os.path.join(work, "train"), 0, _TRAIN_PERSONS.value, 2, 12, r,
                     config.train.k_shots + 1)
    held_out = _records(os.path.join(work, "held_out"), 100_000, _TEST_PERSONS.value, 1, frames,
                        r, frames)

    start = time.monotonic()
    run = meta_learning.train(config, meta_learning.MetaTrainOptions(
        data=train, workdir=os.path.join(work, "meta"), steps=_META_STEPS.value, log_every=100,
        image_every=0, checkpoint_every=200, precision=_PRECISION.value))
    meta_seconds = time.monotonic() - start
    meta = meta_learning.load_meta_model(os.path.join(work, "meta"))

    keras.utils.set_random_seed(0)
    num_videos = meta.discriminator.num_videos
    untrained = meta_learning.MetaModel(config, *networks.build_networks(config.model, num_videos),
                                        checkpoint="untrained")
    options = evaluate.EvalOptions(shots=SHOTS, targets=_TARGETS.value,
                                   finetune_steps=_FT_STEPS.value)
    rows = []
    for label, model, modes in (("(a) untrained", untrained, ("feed-forward",)),
                                ("(b) meta-learned, feed-forward", meta, ("feed-forward",)),
                                ("(c) meta-learned + fine-tuned", meta, ("fine-tuned",))):
        start = time.monotonic()
        result = evaluate.evaluate(model, held_out, _with_modes(options, modes))
        rows += [{**row, "model": label} for row in result.rows]
        print(f"  {label}: {result.videos} held-out videos in {time.monotonic() - start:.0f} s",
              flush=True)

    print()
    print(f"Meta-learning: {_META_STEPS.value} steps of the demo model ({config.preset} layout at "
          f"{config.model.base_channels}→{config.model.max_channels} channels, {r}², batch "
          f"{config.train.batch_size}, K={config.train.k_shots}, {config.train.content_loss} "
          f"content, {_PRECISION.value}) on "
          f"{_TRAIN_PERSONS.value} procedural identities: {meta_seconds:.0f} s in this process "
          f"(0 when a finished run was found; step {run.step}). Held out: "
          f"{_TEST_PERSONS.value} identities never seen, {_TARGETS.value} targets per video; "
          f"fine-tuning {_FT_STEPS.value} steps.")
    print()
    print("| model | K | SSIM ↑ | PSNR dB ↑ | CSIM ↑ | landmark error ↓ (no face) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['model']} | {row['shots']} | {row['ssim']:.3f} | {row['psnr']:.2f} | "
              f"{_fmt(row['csim'])} | {_fmt(row['landmark_error'])} "
              f"({row['landmark_error_no_face']}/{row['frames']}) |")
    print()
    by = {(row["model"][:3], row["shots"]): row for row in rows}
    claims = [("(b) beats (a)", [(("(b)", k), ("(a)", k)) for k in SHOTS]),
              ("(c) beats (b)", [(("(c)", k), ("(b)", k)) for k in SHOTS]),
              ("8 shots beat 1", [((m, 8), (m, 1)) for m in ("(b)", "(c)")])]
    for claim, pairs in claims:
        verdicts = []
        for better, worse in pairs:
            wins = [name for name, higher in HIGHER_IS_BETTER.items()
                    if _beats(by[better][name], by[worse][name], higher)]
            verdicts.append(f"{better[0]} K={better[1]} vs {worse[0]} K={worse[1]}: better on "
                            f"{len(wins)}/4 ({', '.join(wins) or 'none'})")
        print(f"{claim}: " + "; ".join(verdicts))


def _with_modes(options, modes):
    import dataclasses

    return dataclasses.replace(options, modes=modes)


def _fmt(value):
    return "n/a" if value is None else f"{value:.3f}"


def _beats(a, b, higher_is_better: bool) -> bool:
    if a is None or b is None:
        return False
    return a > b if higher_is_better else a < b


if __name__ == "__main__":
    app.run(main)
