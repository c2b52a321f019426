"""Real time on a CPU: the distilled student against its teacher — cost, latency, the whole
runner loop and the quality gap.

    make demo                                   # makes the teacher (demo_out/astronaut_person)
    python benchmarks/realtime.py               # distils it (cached in --workdir) and measures
    python benchmarks/realtime.py --teacher=people/me --driver=talk.mp4 --vgg19_weights=vgg19.h5
    python benchmarks/realtime.py --random_only # only the 256² rows (2.–3.); needs no teacher

1. **Student.** The teacher (a fine-tuned person model) is distilled into the `edge` student at the
   teacher's resolution with `tfhead.training.distill` (`--steps`, `--pool_size`; resumed from `--workdir`).
2. **Cost and latency** (batch 1, median of `--runs` after warm-up, LiteRT + XNNPACK, 1 and 2
   threads, fp32 and int8 — the fastest quantized mode whose every op XNNPACK takes): the teacher
   and its student; and at 256², the paper-size person generator (`paper256`), the `edge`
   student and the warp-guided `edge` student (the student of a warp-guided teacher: a second
   input, the source photo warped to the target landmarks), with random weights (latency does not
   depend on the values; no 256² teacher was trained here). The guided student warps skimage's
   astronaut, the demo's portrait. For it, what `EdgeModel.render` does per frame is also timed
   part by part on 2 threads: rasterize, warp (`PersonSource.warp`, dense piecewise-affine
   `cv2.remap`) and generator — the target is ≥ 40 frames/s for the three together at 256².
3. **The whole runner loop** (`tfhead.animation.reenact` with `tfhead.edge.EdgeModel`, exactly what
   `tfhead-edge --benchmark` runs: decode, dlib landmarks with tracking, motion mapping, render —
   rasterize, warp for the guided student, generator —, paste-back into the source photo when the
   model has one, encode) on `--driver`, with the stage medians.
4. **Quality gap to the teacher** on held-out driving tracks — the distillation's held-out set
   (own motion, retargeted and absolute procedural heads: seeds and heads never trained on) and the
   driving video retargeted onto the person (never in the pool): SSIM and PSNR of student vs
   teacher frames, and the landmark error (dlib on the frame vs the landmarks that drove it, over
   the inter-ocular distance) of each; for the Keras student and its int8 file.
"""

import collections
import dataclasses
import itertools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from _timing import median_ms
from absl import app, flags

_TEACHER = flags.DEFINE_string("teacher", "demo_out/astronaut_person",
                               "Teacher person checkpoint (`make demo` writes the default).")
_DRIVER = flags.DEFINE_string("driver", "demo_out/driver.mp4", "Driving video (held out).")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/tfhead_realtime", "Distillation work directory.")
_STEPS = flags.DEFINE_integer("steps", 3000, "Distillation steps.")
_POOL = flags.DEFINE_integer("pool_size", 4096, "Teacher frames to distil from.")
_VGG19 = flags.DEFINE_string("vgg19_weights", None, "VGG19 weights: adds the perceptual loss.")
_RUNS = flags.DEFINE_integer("runs", 20, "Timed runs per model, mode and thread count.")
_PAPER = flags.DEFINE_bool("paper256", True, "Also time the paper-size person generator at 256².")
_VARIANTS = flags.DEFINE_bool("variants", False, "Only time the candidate student architectures "
                              "the edge preset was chosen from (random weights, 256²), then exit.")
_RANDOM_ONLY = flags.DEFINE_bool("random_only", False, "Only the random-weight 256² models: their "
                                 "latency, render parts and runner loops; no teacher needed.")

# The candidates measured when the edge preset was chosen (BUILD_NOTES.md, "Real-time student").
VARIANTS = {
    "4 levels 16→128": dict(channels="16,32,64,128", encoder_blocks="1,1,1,1",
                            bottleneck_blocks=4),
    "4 levels 24→192": dict(channels="24,48,96,192", encoder_blocks="1,1,2,2",
                            bottleneck_blocks=4),
    "5 levels 16→256": dict(channels="16,32,64,128,256", encoder_blocks="1,1,2,2,1",
                            bottleneck_blocks=3),
    "5 levels 16→256, e=6, head 24": dict(channels="16,32,64,128,256", encoder_blocks="1,1,2,2,1",
                                          bottleneck_blocks=3, expansion=6, head_channels=24),
    "edge (chosen): 5 levels 24→256": {},
}

THREADS = (1, 2)
# Rasterize + warp + generator of the warp-guided edge student at 256² on 2 threads.
TARGET_FPS = 40.0


def astronaut_source(resolution: int, detector):
    """The demo's portrait (skimage's astronaut) as a source photo cropped at `resolution`."""
    import skimage.data

    from tfhead.face.source import PersonSource

    photo = skimage.data.astronaut()
    return PersonSource(photo, detector.detect(photo).landmarks, resolution)


def random_models(source):
    """The paper256 person generator, the edge student and the warp-guided edge student at 256²,
    random weights, all of the person of `source` (a 256² `PersonSource`): its landmarks are their
    reference, its photo is what the guided student warps and what the runner pastes back into."""
    import keras

    from tfhead import config as config_lib
    from tfhead.models import networks
    from tfhead.models.person import PersonGenerator, PersonModel
    from tfhead.models.student import StudentGenerator

    keras.utils.set_random_seed(0)
    reference = source.landmarks
    paper = config_lib.get_preset("paper256")
    generator = networks.Generator(**networks.generator_kwargs(paper.model))
    generator.build()
    embedding = np.random.default_rng(0).normal(size=(1, paper.model.embedding_dim))
    psi = generator.project(embedding.astype("float32"))[0]
    teacher = PersonModel(paper, PersonGenerator.from_meta_generator(generator, psi), "paper256",
                          reference, "feed-forward", source=source)
    edge = config_lib.get_student_preset("edge")
    student = StudentGenerator(**edge.generator_kwargs())
    student.build()
    student_model = PersonModel(paper, student, "edge-random", reference, "student", {}, edge,
                                source)
    guided_edge = dataclasses.replace(edge, warp_guidance=True)
    guided = StudentGenerator(**guided_edge.generator_kwargs())
    guided.build()
    guided_model = PersonModel(config_lib.get_preset("paper256", {"model.warp_guidance": True}),
                               guided, "edge-guided-random", reference, "student", {},
                               guided_edge, source)
    return teacher, student_model, guided_model


def time_model(model, label: str, driver: str | None, runs: int, modes=("fp32", "int8")):
    """Exports `model` in `modes` (parity measured, not enforced) and times each file's graph
    (the inputs made beforehand)."""
    import tensorflow as tf

    from tfhead import export
    from tfhead.edge import Invoker, model_file
    from tfhead.models import flops

    r = model.resolution
    names = model_file.input_names(model.warp_guidance)
    serve = export.serving_function(model)
    gmac = flops.count_macs(lambda *x: serve(*x)[0], [tf.TensorSpec([1, r, r, 3])] * len(names))
    gmac /= 1e9
    inputs = export.export_inputs(model, driver, calibration_count=64, parity_count=8)
    loose = export.Thresholds(float("inf"), float("inf"), -1.0)
    x = [one[:1] for one in inputs.parity["person"]]
    rows, contents = [], {}
    for mode in modes:
        result = export.export(model, mode, None, inputs, loose)
        ms = {}
        for threads in THREADS:
            invoker = Invoker(result.content, threads, names)
            ms[threads] = median_ms(lambda: invoker(*x), runs, warmup=3)
        rows.append({"model": label, "resolution": r, "gmac": gmac,
                     "params": model.generator.count_params(), "mode": mode,
                     "mib": result.size_bytes / 2**20, "ms": ms,
                     "ssim": result.parity["person"]["ssim"],
                     "outside": ", ".join(f"{op} ×{n}" for op, n in
                                          collections.Counter(result.undelegated).items())
                                or "none"})
        contents[mode] = result.content
        print(f"  {label} {mode}: {gmac:.2f} GMAC, {result.size_bytes / 2**20:.2f} MiB, "
              + ", ".join(f"{t} thread(s) {ms[t]:.2f} ms" for t in THREADS), flush=True)
    return rows, contents


def time_variants() -> None:
    from tfhead import config as config_lib
    from tfhead.face import procedural
    from tfhead.models.person import PersonModel
    from tfhead.models.student import StudentGenerator

    paper = config_lib.get_preset("paper256")
    reference = procedural.procedural_landmarks(procedural.random_identity(0), 256)
    rows = []
    for label, overrides in VARIANTS.items():
        config = config_lib.get_student_preset("edge", overrides)
        student = StudentGenerator(**config.generator_kwargs())
        student.build()
        model = PersonModel(paper, student, label, reference, "student", {}, config)
        rows += time_model(model, label, None, _RUNS.value)[0]
    print()
    print("| student at 256² (random weights) | GMAC | parameters | fp32 1 thread ms | fp32 2 "
          "threads ms | int8 1 thread ms | int8 2 threads ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for fp32, int8 in zip(rows[::2], rows[1::2]):
        print(f"| {fp32['model']} | {fp32['gmac']:.2f} | {fp32['params'] / 1e6:.2f} M | "
              f"{fp32['ms'][1]:.2f} | {fp32['ms'][2]:.2f} | {int8['ms'][1]:.2f} | "
              f"{int8['ms'][2]:.2f} |")


def time_render(content: bytes, runs: int) -> dict[str, float]:
    """Median ms per frame, on 2 interpreter threads, of the parts of `EdgeModel.render` for one
    frame — rasterize, warp the source, generator — and of the whole call, over a track of the
    person's own motion (one frame per call, as the runner renders)."""
    from tfhead.edge import EdgeModel
    from tfhead.face import landmark_image, motion

    model = EdgeModel(content, num_threads=2)
    track = motion.motion_track(model.reference_landmarks, 50, seed=0)
    frames = itertools.cycle(track[:, None])
    images, warps = model.model_inputs(track[:1])
    x = [landmark_image.to_model_range(images), landmark_image.to_model_range(warps)]
    return {"rasterize": median_ms(lambda: landmark_image.draw_batch(next(frames),
                                                                     model.resolution), runs),
            "warp": median_ms(lambda: model.source.warp(next(frames)), runs),
            "generator": median_ms(lambda: model.invoker(*x), runs),
            "render": median_ms(lambda: model.render(next(frames)), runs)}


def runner_loop(content: bytes, driver: str, detector, directory: str):
    """`tfhead-edge --benchmark` on `driver` (written to an mp4 like the tool does): frames/s of
    the whole loop and the stage medians."""
    from tfhead.animation import reenact
    from tfhead.edge import EdgeModel

    model = EdgeModel(content, num_threads=2)
    return reenact.reenact(model, driver, os.path.join(directory, "runner.mp4"),
                           reenact.ReenactOptions(batch_size=1), detector)


def quality(teacher, student, student_file: bytes, points: np.ndarray, detector) -> dict:
    """Student (Keras and TFLite) vs teacher on landmark sets `points` `[N, 68, 2]`."""
    from tfhead.edge import EdgeModel
    from tfhead.evaluation import metrics
    from tfhead.training import distill

    teacher_frames = teacher.render(points)
    outputs = {"student (Keras)": student.render(points),
               "student (TFLite int8)": EdgeModel(student_file, 2).render(points)}
    teacher_error = metrics.landmark_error(teacher_frames, points, detector)
    rows = []
    for name, frames in outputs.items():
        numbers = distill.compare(frames, teacher_frames)
        error = metrics.landmark_error(frames, points, detector)
        rows.append({"model": name, **numbers,
                     "landmark_error": float(np.nanmean(error)) if np.isfinite(error).any()
                     else float("nan"),
                     "no_face": int(np.isnan(error).sum()),
                     "teacher_landmark_error": float(np.nanmean(teacher_error)),
                     "teacher_no_face": int(np.isnan(teacher_error).sum()), "frames": len(points)})
    return rows


def driver_points(model, driver: str, detector) -> np.ndarray:
    """The driving video's landmarks retargeted onto the person (relative motion)."""
    from tfhead.animation import driving

    source = driving.DrivingSource(driver, model.resolution, detector, redetect_every=1)
    mapper = driving.MotionMapper("relative", model.reference_landmarks, model.resolution)
    return np.stack([mapper.landmarks(item.landmarks) for item in source
                     if item.landmarks is not None])


def distilled(teacher, detector) -> tuple:
    """1. The teacher's edge student (resumed from --workdir), and the seconds this run took."""
    from tfhead import config as config_lib
    from tfhead.training import distill

    print(f"1. Distilling {teacher.name} ({teacher.mode}, {teacher.preset}, "
          f"{teacher.resolution}²) into the edge student, {_STEPS.value} steps …", flush=True)
    options = distill.DistillOptions(
        student=config_lib.get_student_preset("edge"), steps=_STEPS.value,
        pool_size=_POOL.value, perceptual="vgg19" if _VGG19.value else "none",
        vgg19_weights=_VGG19.value, eval_every=1000)
    start = time.monotonic()
    result = distill.distill(teacher, _WORKDIR.value, options, detector)
    if result.model is None:
        raise SystemExit("Interrupted; rerun to resume.")
    return result.model, time.monotonic() - start


def main(argv):
    del argv
    import logging

    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    logging.getLogger("tfhead").setLevel(logging.INFO)
    from tfhead.face import landmarks
    from tfhead.models.person import PersonModel

    if _VARIANTS.value:
        time_variants()
        return
    with_teacher = not _RANDOM_ONLY.value
    if with_teacher and not os.path.isdir(_TEACHER.value):
        raise app.UsageError(f"No teacher at {_TEACHER.value}: run `make demo` first (it "
                             "fine-tunes the astronaut), pass --teacher=<person checkpoint>, or "
                             "--random_only for the 256² rows alone.")
    driver = _DRIVER.value
    if not os.path.isfile(driver):
        from tfhead import demo

        os.makedirs(_WORKDIR.value, exist_ok=True)
        driver = os.path.join(_WORKDIR.value, "driver.mp4")
        if not os.path.isfile(driver):
            demo.write_driver(driver, 100, seed=0)
    detector = landmarks.LandmarkDetector()

    rows, files, loop_files = [], {}, []
    if with_teacher:
        teacher = PersonModel.load(_TEACHER.value)
        student, distill_seconds = distilled(teacher, detector)
    print("2. Cost and latency …", flush=True)
    if with_teacher:
        teacher_label = f"teacher ({teacher.preset})"
        for model, label in ((teacher, teacher_label), (student, "student (edge)")):
            measured, contents = time_model(model, label, driver, _RUNS.value)
            rows += measured
            files[label] = contents
        loop_files += [(f"{teacher_label} int8", files[teacher_label]["int8"]),
                       ("student (edge) int8", files["student (edge)"]["int8"])]
    paper, edge_random, guided_random = random_models(astronaut_source(256, detector))
    if _PAPER.value:
        rows += time_model(paper, "paper256 G (random weights)", None, _RUNS.value)[0]
    measured, contents = time_model(edge_random, "edge student (random weights)", None,
                                    _RUNS.value, modes=("fp32", "fp16", "dynamic", "int8"))
    rows += measured
    guided_rows, guided_files = time_model(guided_random, "warp-guided edge student (random "
                                           "weights)", None, _RUNS.value)
    rows += guided_rows
    loop_files += [("edge student 256² fp32", contents["fp32"]),
                   ("edge student 256² int8", contents["int8"]),
                   ("warp-guided edge student 256² fp32", guided_files["fp32"]),
                   ("warp-guided edge student 256² int8", guided_files["int8"])]
    parts = {mode: time_render(content, _RUNS.value) for mode, content in guided_files.items()}

    print("3. The whole runner loop …", flush=True)
    loops = []
    for label, content in loop_files:
        report = runner_loop(content, driver, detector, _WORKDIR.value)
        loops.append((label, report))
        print(f"  {label}: {report.frames_per_second:.1f} frames/s", flush=True)

    if with_teacher:
        print("4. Quality gap to the teacher …", flush=True)
        heldout = np.load(os.path.join(_WORKDIR.value, "heldout", "landmarks.npy"))
        gap = {f"held-out tracks ({len(heldout)})": quality(
            teacher, student, files["student (edge)"]["int8"], heldout, detector)}
        points = driver_points(teacher, driver, detector)
        gap[f"{os.path.basename(driver)} retargeted ({len(points)})"] = quality(
            teacher, student, files["student (edge)"]["int8"], points, detector)
        print()
        print(f"Distillation: {student.record['steps']} steps, batch {student.record['batch']}, "
              f"pool {student.record['pool']}, perceptual {student.record['perceptual']}; "
              f"{student.record['seconds']:.0f} s of training steps over all runs, "
              f"{distill_seconds:.0f} s wall in this run (pool rendering included).")
    print()
    print("| model | size² | GMAC | parameters | TFLite | MiB | 1 thread ms | 2 threads ms | "
          "2 threads frames/s | SSIM vs Keras | ops outside XNNPACK |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['model']} | {row['resolution']} | {row['gmac']:.2f} | "
              f"{row['params'] / 1e6:.2f} M | {row['mode']} | {row['mib']:.2f} | "
              f"{row['ms'][1]:.2f} | {row['ms'][2]:.2f} | {1e3 / row['ms'][2]:.0f} | "
              f"{row['ssim']:.4f} | {row['outside']} |")
    print()
    print("| warp-guided edge student 256², 2 threads | rasterize ms | warp ms | generator ms | "
          "render ms (all three) | render frames/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, ms in parts.items():
        print(f"| {mode} | {ms['rasterize']:.2f} | {ms['warp']:.2f} | {ms['generator']:.2f} | "
              f"{ms['render']:.2f} | {1e3 / ms['render']:.0f} |")
    print()
    print("| runner loop (2 threads) | whole loop frames/s | decode | landmarks | motion | "
          "render | paste | encode | render frames/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, report in loops:
        m = report.median_ms
        print(f"| {label} | {report.frames_per_second:.1f} | {m['decode']:.2f} | "
              f"{m['landmarks']:.2f} | {m['motion']:.2f} | {m['render']:.2f} | "
              f"{m['paste']:.2f} | {m['encode']:.2f} | {1e3 / m['render']:.0f} |")
    if with_teacher:
        print()
        print("| held-out driving | frames | model | SSIM vs teacher | PSNR dB | mean abs diff "
              "/255 | landmark error (no face) | teacher's landmark error (no face) |")
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        for name, quality_rows in gap.items():
            for q in quality_rows:
                print(f"| {name} | {q['frames']} | {q['model']} | {q['ssim']:.4f} | "
                      f"{q['psnr']:.2f} | {q['mean_abs']:.2f} | {q['landmark_error']:.3f} "
                      f"({q['no_face']}) | {q['teacher_landmark_error']:.3f} "
                      f"({q['teacher_no_face']}) |")
    print()
    best = max(1e3 / ms["render"] for ms in parts.values())
    verdict = "REACHED" if best >= TARGET_FPS else "NOT reached"
    print(f"Target ≥ {TARGET_FPS:.0f} frames/s for rasterize + warp + generator of the "
          f"warp-guided edge student at 256² on 2 threads: {verdict} ({best:.0f} frames/s, best "
          "mode).")


if __name__ == "__main__":
    app.run(main)
