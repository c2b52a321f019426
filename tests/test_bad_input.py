"""Bad input on every entry point: nothing a user owns is destroyed, refusals come before the
expensive work, no wrong result exits 0, and each failure is one line (README, "What bad input
gets"). The data-loss cases check that the files are still there, byte for byte."""

import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data

from tfhead import export, runtime
from tfhead.animation import driving, reenact
from tfhead.data import preprocess
from tfhead.edge import EdgeModel, ModelFileError, model_file
from tfhead.face import landmarks, shots
from tfhead.io import fileio, outputs
from tfhead.io import video as video_lib
from tfhead.models.person import PERSON_FILE, PersonCheckpointError, PersonModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
DEAD_PID = 4_194_305  # above Linux's largest pid_max (2**22): never a running process


def snapshot(root) -> dict:
    """Every file under `root` (relative path → SHA-256): compared before and after a refusal."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def cli(*command, cwd=REPO):
    """Runs an entry point (a script path under the repository, or `-m module`)."""
    if command[0] != "-m":
        command = (os.path.join(REPO, command[0]),) + command[1:]
    return subprocess.run([sys.executable, *command], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=600)


def refused(run, *words):
    """A one-line refusal: exit code 1, no traceback, the words in the message."""
    assert run.returncode == 1, (run.returncode, run.stdout[-1500:], run.stderr[-3000:])
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, (word, last)
    return last


@pytest.fixture
def user_folder(tmp_path):
    """A folder of someone's files: a photo and notes in a subfolder."""
    folder = tmp_path / "people"
    (folder / "notes").mkdir(parents=True)
    cv2.imwrite(str(folder / "me.png"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    (folder / "notes" / "todo.txt").write_text("call mum\n")
    return folder


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return str(path)


@pytest.fixture(scope="module")
def tflite(tiny_person, tmp_path_factory):
    path = tmp_path_factory.mktemp("tflite") / "astronaut.fp32.tflite"
    inputs = export.export_inputs(tiny_person, calibration_count=4, parity_count=2)
    export.export(tiny_person, "fp32", str(path), inputs)
    return str(path)


@pytest.fixture(scope="module")
def faceless_video(tmp_path_factory):
    """30 frames of moving noise: a video with no face at all."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (30, 96, 96, 3), dtype=np.uint8)
    path = str(tmp_path_factory.mktemp("faceless") / "noise.mp4")
    video_lib.write_video(path, frames, fps=25.0)
    return path


# ---------------------------------------------------------------------------------------------
# Data loss and overwrites.

def test_saving_a_person_over_a_folder_of_other_files_is_refused_and_keeps_them(
        tiny_person, user_folder):
    before = snapshot(user_folder)
    with pytest.raises(outputs.OutputPathError, match="not a person checkpoint"):
        tiny_person.save(str(user_folder))
    assert snapshot(user_folder) == before


def test_saving_a_person_over_a_file_is_refused_and_keeps_it(tiny_person, tmp_path):
    target = tmp_path / "me.png"
    target.write_bytes(b"a photo, not a model")
    with pytest.raises(outputs.OutputPathError, match="a file of"):
        tiny_person.save(str(target))
    assert target.read_bytes() == b"a photo, not a model"
    assert os.listdir(tmp_path) == ["me.png"]  # nothing moved to a hidden name


def test_a_person_checkpoint_and_an_empty_folder_are_replaced(tiny_person, tmp_path):
    path = tiny_person.save(str(tmp_path / "me"))
    tiny_person.save(path)  # the same kind of artefact: replaced atomically
    assert sorted(os.listdir(path)) == ["generator.weights.h5", PERSON_FILE, "photo.png"]
    (tmp_path / "empty").mkdir()
    tiny_person.save(str(tmp_path / "empty"))
    assert PersonModel.load(str(tmp_path / "empty")).name == "astronaut"
    # A checkpoint holding a file of the user's is no longer only ours: refused.
    (tmp_path / "me" / "keep.txt").write_text("mine")
    with pytest.raises(outputs.OutputPathError):
        tiny_person.save(path)
    assert (tmp_path / "me" / "keep.txt").read_text() == "mine"


def test_finetune_cli_refuses_the_working_directory_and_a_folder_of_models(
        meta_dir, tiny_person, user_folder, tmp_path):
    # --out=. in a folder holding the photo (today: the folder was deleted, exit 0).
    before = snapshot(user_folder)
    run = cli("train/finetune.py", f"--meta={meta_dir}", "--photos=me.png", "--out=.",
              "--steps=1", cwd=str(user_folder))
    refused(run, "--out=.", "holds the input --photos")
    assert snapshot(user_folder) == before
    # --out=<a folder holding two person models>.
    models = tmp_path / "models"
    tiny_person.save(str(models / "a")), tiny_person.save(str(models / "b"))
    before = snapshot(models)
    run = cli("train/finetune.py", f"--meta={meta_dir}",
              f"--photos={user_folder / 'me.png'}", f"--out={models}", "--steps=1")
    refused(run, "not a person checkpoint", "2 entries")
    assert snapshot(models) == before


def test_finetune_cli_refuses_an_existing_file_as_out(meta_dir, user_folder):
    target = user_folder / "notes" / "todo.txt"
    run = cli("train/finetune.py", f"--meta={meta_dir}", f"--photos={user_folder / 'me.png'}",
              f"--out={target}", "--steps=1")
    refused(run, "exists and is a file")
    assert target.read_text() == "call mum\n"
    assert sorted(os.listdir(target.parent)) == ["todo.txt"]


def test_the_runner_refuses_to_write_over_its_driving_video(tflite, driver, tmp_path):
    clip = tmp_path / "talk.mp4"
    clip.write_bytes(open(driver["audio"], "rb").read())
    before = clip.read_bytes()
    run = cli("-m", "tfhead_cli.edge", f"--model={tflite}", f"--driver={clip}", f"--out={clip}")
    refused(run, "is also the input --driver")
    run = cli("-m", "tfhead_cli.edge", f"--model={tflite}", f"--driver={clip}",
              f"--out={tmp_path / 'a.mp4'}", f"--side_by_side={clip}")
    refused(run, "--side_by_side", "is also the input --driver")
    assert clip.read_bytes() == before


def test_animation_refuses_its_driver_its_other_output_and_a_non_mp4(tiny_person, driver,
                                                                     tmp_path):
    clip = tmp_path / "talk.mp4"
    clip.write_bytes(open(driver["silent"], "rb").read())
    before = clip.read_bytes()
    with pytest.raises(outputs.OutputPathError, match="is also the input --driver"):
        reenact.reenact(tiny_person, str(clip), str(clip))
    assert clip.read_bytes() == before
    same = str(tmp_path / "out.mp4")
    with pytest.raises(outputs.OutputPathError, match="are the same file"):
        reenact.reenact(tiny_person, str(clip), same, reenact.ReenactOptions(side_by_side=same))
    with pytest.raises(outputs.OutputPathError, match="must end in .mp4"):
        reenact.reenact(tiny_person, str(clip), str(tmp_path / "out.avi"))
    assert sorted(os.listdir(tmp_path)) == ["talk.mp4"]


def test_distill_refuses_to_write_the_student_over_its_teacher(tiny_person, tmp_path):
    teacher = tiny_person.save(str(tmp_path / "teacher"))
    before = snapshot(teacher)
    run = cli("train/distill.py", f"--teacher={teacher}", f"--out={teacher}", "--steps=1")
    refused(run, "is also the input --teacher")
    assert snapshot(teacher) == before
    assert sorted(os.listdir(tmp_path)) == ["teacher"]  # no <out>.work either


def test_export_replaces_its_own_tflite_but_never_another_file(tiny_person, tflite, tmp_path):
    foreign = tmp_path / "other.tflite"
    foreign.write_bytes(b"\x1c\0\0\0TFL3 someone else's model")
    with pytest.raises(outputs.OutputPathError, match="no tfhead metadata"):
        export.check_output(str(foreign))
    assert foreign.read_bytes() == b"\x1c\0\0\0TFL3 someone else's model"
    ours = tmp_path / "ours.tflite"
    ours.write_bytes(open(tflite, "rb").read())
    assert export.check_output(str(ours)) == str(ours)
    with pytest.raises(outputs.OutputPathError, match="must end in .tflite"):
        export.check_output(str(tmp_path / "model.bin"))


def test_work_folders_of_other_kinds_are_refused(user_folder, tmp_path):
    before = snapshot(user_folder)
    with pytest.raises(outputs.OutputPathError, match="not a preprocessed-records folder"):
        preprocess.check_output(str(user_folder))
    with pytest.raises(outputs.OutputPathError, match="not a meta-learning work directory"):
        outputs.workdir_output(str(user_folder), "config.json", flag="--workdir",
                               kind="meta-learning work directory")
    from tfhead import demo

    with pytest.raises(outputs.OutputPathError, match="not a demo folder"):
        demo.check_output(str(user_folder))
    assert snapshot(user_folder) == before
    # Its own kind (a run to resume) and a new folder pass.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    outputs.workdir_output(str(tmp_path / "run"), "config.json", flag="--workdir", kind="x")
    outputs.workdir_output(str(tmp_path / "new"), "config.json", flag="--workdir", kind="x")


def test_meta_train_and_preprocess_refuse_a_folder_of_other_files(user_folder, tmp_path):
    before = snapshot(user_folder)
    run = cli("train/meta_train.py", "--preset=tiny", f"--data={tmp_path}",
              f"--workdir={user_folder}", "--steps=1", "--content_loss=pixel_l1")
    refused(run, "not a meta-learning work directory")
    videos = tmp_path / "videos"
    videos.mkdir()
    video_lib.write_video(str(videos / "a.mp4"), np.zeros((2, 64, 64, 3), np.uint8), fps=25.0)
    run = cli("train/preprocess.py", f"--input={videos}", f"--out={user_folder}")
    refused(run, "not a preprocessed-records folder")
    assert snapshot(user_folder) == before


def test_evaluate_refuses_to_overwrite_a_json_it_did_not_write(meta_dir, tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text('{"theme": "dark"}')
    run = cli("train/evaluate.py", f"--meta={meta_dir}", f"--data={tmp_path}",
              f"--out={settings}", "--nofid")
    refused(run, "not JSON written by train/evaluate.py")
    assert settings.read_text() == '{"theme": "dark"}'


# ---------------------------------------------------------------------------------------------
# Refused before the expensive work.

def test_output_paths_are_checked_before_any_model_is_loaded(photo, tmp_path):
    """Each entry point's --meta/--person does not exist: the message is about --out, so the
    output was checked first (before seconds of loading and minutes of work)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder would be")
    missing = str(tmp_path / "no_such_run")
    cases = [
        (("train/finetune.py", f"--meta={missing}", f"--photos={photo}",
          f"--out={blocker / 'me'}"), "is a file"),
        (("export/export_tflite.py", f"--person={missing}", f"--out={tmp_path}",
          "--quantization=fp32"), None),  # a folder --out is fine: the person is named
        (("export/export_tflite.py", f"--person={missing}", f"--out={tmp_path}.tflite/",
          "--quantization=fp32"), None),
        (("-m", "tfhead_cli.animate", f"--person={missing}", f"--driver={photo}",
          f"--out={tmp_path}"), "not a file"),
    ]
    (tmp_path / "dir.tflite").mkdir()
    cases.append((("export/export_tflite.py", f"--person={missing}",
                   f"--out={tmp_path / 'dir.tflite'}", "--quantization=fp32"), "not a file"))
    for command, message in cases:
        run = cli(*command)
        if message is None:
            refused(run, "No person checkpoint")
        else:
            refused(run, "--out", message)


def test_an_unwritable_location_is_found_before_any_work(tmp_path):
    # /proc refuses new files even to root (permission bits alone would not stop root).
    with pytest.raises(outputs.OutputPathError, match="not writable"):
        outputs.file_output("/proc/tfhead/out.mp4", flag="--out", kind="mp4 video",
                            extensions=(".mp4",))
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        with pytest.raises(outputs.OutputPathError, match="not writable"):
            outputs.file_output(str(locked / "a.mp4"), flag="--out", kind="mp4 video",
                                extensions=(".mp4",))


def test_preprocess_resumes_over_a_leftover_temporary_folder(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    video_lib.write_video(str(videos / "a.mp4"), np.zeros((2, 64, 64, 3), np.uint8), fps=25.0)
    out = tmp_path / "records"
    (out / preprocess.WORK_DIR).mkdir(parents=True)
    (out / preprocess.WORK_DIR / "plan.json").write_text("{}")
    stale = out / f".tmp-{DEAD_PID}-videos-00000-of-00001.tfrecord"
    stale.mkdir()
    (stale / "junk").write_text("x")
    preprocess.check_output(str(out))  # its own kind: accepted, and the leftover removed
    assert not stale.exists()


# ---------------------------------------------------------------------------------------------
# No wrong result with exit 0.

def test_a_driver_with_no_face_fails_early_and_writes_nothing(tiny_person, faceless_video,
                                                              tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(driving.DrivingError, match="no face in 16 of its first 16 frames"):
        reenact.reenact(tiny_person, faceless_video, str(out))
    assert not out.exists() and not os.listdir(tmp_path)
    # With the share turned off, one face is still needed.
    with pytest.raises(driving.DrivingError, match="no face in any of its 30 frames"):
        reenact.reenact(tiny_person, faceless_video, str(out),
                        reenact.ReenactOptions(min_face_fraction=0.0))
    assert not out.exists()


def test_a_driver_below_the_face_share_fails_at_the_end_and_writes_nothing(
        tiny_person, driver, tmp_path):
    # The fixture driver shows a face in 27 of its 30 frames.
    out = tmp_path / "out.mp4"
    with pytest.raises(driving.DrivingError, match="--min_face_fraction"):
        reenact.reenact(tiny_person, driver["silent"], str(out),
                        reenact.ReenactOptions(min_face_fraction=0.95))
    assert not out.exists()
    report = reenact.reenact(tiny_person, driver["silent"], str(out),
                             reenact.ReenactOptions(min_face_fraction=0.9))
    assert report.frames == 30 and out.exists()


def test_the_runner_cli_fails_on_a_faceless_driver(tflite, faceless_video, tmp_path):
    out = tmp_path / "out.mp4"
    run = cli("-m", "tfhead_cli.edge", f"--model={tflite}", f"--driver={faceless_video}",
              f"--out={out}")
    refused(run, "shows no face", "nothing was written")
    assert not out.exists()


def test_an_image_as_the_driver_is_refused(tiny_person, photo, tmp_path):
    with pytest.raises(driving.DrivingError, match="still image, not a video"):
        reenact.reenact(tiny_person, photo, str(tmp_path / "out.mp4"))
    assert not os.listdir(tmp_path)
    renamed = tmp_path / "photo.mp4"  # judged by content, not by name
    renamed.write_bytes(open(photo, "rb").read())
    with pytest.raises(driving.DrivingError, match="still image"):
        driving.check_source(str(renamed))


def _moving_out_of_frame(image, points, offsets):
    """The photo slid left by each offset (black fills the right), with where the face went."""
    h, w = image.shape[:2]
    frames = []
    for dx in offsets:
        shifted = np.zeros_like(image)
        if dx < w:
            shifted[:, :w - dx] = image[:, dx:]
        frames.append(shifted)
    return np.stack(frames)


def test_finetuning_from_a_video_drops_frames_where_the_face_leaves_and_says_so(tmp_path):
    image = skimage.data.astronaut()
    detector = landmarks.LandmarkDetector()
    left = detector.detect(image).landmarks[:, 0].min()
    # The face slides out over the left border: whole, whole, cut, cut, gone.
    offsets = [0, 40, int(left) + 30, int(left) + 60, 511]
    frames = _moving_out_of_frame(image, None, offsets)
    path = str(tmp_path / "leaving.mp4")
    video_lib.write_video(path, frames, fps=25.0)
    person = shots.load_person([path], 64, detector, video_shots=5)
    used = {int(s.rsplit("#", 1)[1]) for s in person.sources}
    dropped = {int(s.rsplit("#", 1)[1]): reason for s, reason in person.dropped}
    assert used == {0, 1}, person.report()
    assert set(dropped) == {2, 3, 4}, person.report()
    for index in (2, 3):  # dlib still "finds" the half face: its landmarks spill out of the image
        assert "cut by the image border" in dropped[index] or "No face" in dropped[index]
    assert any("cut by the image border" in dropped[i] for i in (2, 3)), person.report()
    assert "No face" in dropped[4]
    report = person.report()
    assert "used 2 shot(s)" in report and "dropped leaving.mp4#4" in report


def test_a_photo_with_the_face_cut_by_the_border_is_refused():
    image = skimage.data.astronaut()
    points = landmarks.LandmarkDetector().detect(image).landmarks
    cut = image[:, int(points[:, 0].min()) + 30:]
    with pytest.raises(shots.PersonInputError, match="cut.png: the face is cut by the image"):
        shots.person_frames([("cut.png", cut)], 64, landmarks.LandmarkDetector())


def test_shot_problem_rules():
    points = np.stack(np.meshgrid(np.linspace(100, 200, 17), np.linspace(100, 200, 4)),
                      -1).reshape(-1, 2)[:68]
    assert shots.shot_problem((400, 400), points) is None
    assert "3 of 68 landmarks" in shots.shot_problem(
        (400, 400), np.concatenate([points[:65], [[-5, 150], [150, 402], [401, 150]]]))
    # All landmarks inside, but the crop box mostly outside: a face filling a tiny image.
    assert "outside the image" in shots.shot_problem((101, 101), points - 100)


def test_several_faces_are_named_and_one_can_be_chosen():
    face = skimage.data.astronaut()[:300, 60:380]
    small = cv2.resize(face, None, fx=0.8, fy=0.8)
    canvas = np.zeros((300, 600, 3), np.uint8)
    canvas[:small.shape[0], :small.shape[1]] = small            # left: the smaller face
    canvas[:, 600 - face.shape[1]:] = face                       # right: the larger face
    detector = landmarks.LandmarkDetector()
    largest = shots.person_frames([("two.png", canvas)], 64, detector)
    assert largest.notes == ["two.png: 2 faces found, used face 2 counted from the left "
                             "(the largest; --face=N picks another)"]
    chosen = shots.person_frames([("two.png", canvas)], 64, detector, face=1)
    assert chosen.notes == ["two.png: 2 faces found, used face 1 counted from the left"]
    assert detector.detect(canvas, face=1).landmarks[:, 0].max() < 300
    assert detector.detect(canvas, face=2).landmarks[:, 0].min() > 300
    with pytest.raises(landmarks.FaceNotFoundError, match="Face 3 was asked for"):
        detector.detect(canvas, face=3)


# ---------------------------------------------------------------------------------------------
# One clear line instead of a traceback.

def test_a_truncated_tflite_is_one_clear_error_at_every_length(tflite):
    content = open(tflite, "rb").read()
    for n in sorted({8, 9, 16, 64, 200, 1000, *range(0, len(content), len(content) // 97),
                     len(content) - 1}):
        with pytest.raises(ModelFileError):
            EdgeModel(content[:n], where=f"cut at {n}")


def test_the_runner_cli_names_a_truncated_model(tflite, driver, tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(open(tflite, "rb").read()[:300])
    run = cli("-m", "tfhead_cli.edge", f"--model={cut}", f"--driver={driver['silent']}",
              f"--out={tmp_path / 'out.mp4'}")
    refused(run, "damaged or truncated")


def test_the_runner_cli_names_a_damaged_source_photo(tflite, driver, tmp_path):
    """The photo a model file carries for the warp and the paste-back is checked on loading."""
    content = open(tflite, "rb").read()
    bad = tmp_path / "bad_photo.tflite"
    bad.write_bytes(model_file.with_metadata(content, model_file.read_metadata(content),
                                             {model_file.SOURCE_PHOTO_NAME: b"\xff\xd8 cut"}))
    out = tmp_path / "out.mp4"
    run = cli("-m", "tfhead_cli.edge", f"--model={bad}", f"--driver={driver['silent']}",
              f"--out={out}")
    refused(run, "source photo", "export it again")
    assert not out.exists()


@pytest.mark.parametrize("damage", ["config", "reference_landmarks", "name", "list"])
def test_a_person_json_with_missing_keys_is_one_clear_error(tiny_person, tmp_path, damage):
    path = tiny_person.save(str(tmp_path / "me"))
    meta_path = os.path.join(path, PERSON_FILE)
    with open(meta_path) as f:
        meta = json.load(f)
    if damage == "list":
        meta = [meta]
    else:
        del meta[damage]
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with pytest.raises(PersonCheckpointError, match="person.json"):
        PersonModel.load(path)


def test_a_person_checkpoint_of_the_old_spectral_norm_layout_is_refused(tiny_person, tmp_path):
    path = tiny_person.save(str(tmp_path / "me"))
    meta_path = os.path.join(path, PERSON_FILE)
    with open(meta_path) as f:
        meta = json.load(f)
    meta["format_version"] = 1
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with pytest.raises(PersonCheckpointError, match="format 1.*Fine-tune it again"):
        PersonModel.load(path)


def test_misleading_messages_now_say_what_is_wrong(tiny_person, driver, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    with pytest.raises(shots.PersonInputError, match="is a folder"):
        shots.load_person([str(folder)], 64, landmarks.LandmarkDetector())
    with pytest.raises(driving.DrivingError, match="is a folder, not a video"):
        driving.check_source(str(folder))
    a_file = tmp_path / "videos.txt"
    a_file.write_text("x")
    with pytest.raises(preprocess.PreprocessError, match="is a file; give the folder"):
        preprocess.discover(str(a_file))
    with pytest.raises(driving.DrivingError, match="past the driver's end: it has 30 frame"):
        reenact.reenact(tiny_person, driver["silent"], str(tmp_path / "out.mp4"),
                        reenact.ReenactOptions(neutral_frame=500))
    assert not (tmp_path / "out.mp4").exists()


def test_tensorflow_start_up_lines_are_hidden_unless_asked_for():
    command = ("train/meta_train.py", "--preset=tiny", "--dry_run")
    quiet = cli(*command)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    for noise in ("E0000", "I0000", "cuInit", "absl::InitializeLog"):
        assert noise not in quiet.stderr, quiet.stderr[-2000:]
    loud = cli(*command, "--verbosity=1")
    assert loud.returncode == 0
    assert "absl::InitializeLog" in loud.stderr or "0000 " in loud.stderr, loud.stderr[-2000:]


def test_verbosity_is_read_before_absl_parses_the_flags():
    assert runtime.verbosity_requested(["x", "--verbosity=1"]) == 1
    assert runtime.verbosity_requested(["x", "-v", "2"]) == 2
    assert runtime.verbosity_requested(["x", "--v=1", "--vgg19_weights=3"]) == 1
    assert runtime.verbosity_requested(["x", "--vgg19_weights=3"]) == 0


# ---------------------------------------------------------------------------------------------
# Leftovers of killed runs.

def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tiny_person,
                                                                            tmp_path):
    dead_file = tmp_path / f".tmp-{DEAD_PID}-me.fp32.tflite"
    dead_file.write_bytes(b"")
    dead_folder = tmp_path / f".tmp-{DEAD_PID}-me"
    (dead_folder / "sub").mkdir(parents=True)
    live = tmp_path / f".tmp-{os.getpid()}-other.mp4"
    live.write_bytes(b"being written")
    mine = tmp_path / ".tmp-notes.txt"  # not the project's pattern: never touched
    mine.write_text("keep")
    tiny_person.save(str(tmp_path / "me"))
    assert not dead_file.exists() and not dead_folder.exists()
    assert live.read_bytes() == b"being written" and mine.read_text() == "keep"
    assert fileio.remove_stale_temporaries(str(tmp_path / "absent")) == []
