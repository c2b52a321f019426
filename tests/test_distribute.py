"""Several workers: every one resumes from the chief's checkpoints, and they must agree on the step
(`distribute.check_same_step`); the end-to-end test runs two local workers over loopback."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tfhead import config as config_lib
from tfhead.training import distribute, meta_learning

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_check_same_step_is_a_no_op_on_one_machine():
    for strategy in (tf.distribute.get_strategy(),
                     tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
        for step in (0, 7):
            assert distribute.check_same_step(strategy, step) is None


def test_the_different_steps_error_says_who_restored_what_and_what_to_do():
    message = distribute.different_steps_message(
        {("worker", 1): 0, ("worker", 0): 3, ("worker", 2): 3}, chief=("worker", 0))
    assert ("worker 0 (the chief) step 3, worker 1 step 0 (no checkpoint in its --workdir), "
            "worker 2 step 3.") in message
    assert "same --workdir on a shared filesystem" in message
    assert "copy the chief's <workdir>/checkpoints/ into each worker's --workdir" in message


def test_a_worker_resumes_from_the_chiefs_checkpoints_not_its_scratch_folder(tmp_path):
    config = config_lib.get_preset("tiny", {"train.content_loss": "pixel_l1"})
    learner = meta_learning.MetaLearner(config, 6)
    chief_dir = distribute.chief_checkpoint_directory(str(tmp_path))
    scratch = str(tmp_path / ".worker-scratch" / "worker-1")
    for directory, step in ((chief_dir, 4), (scratch, 1)):  # the scratch copy is older
        state = meta_learning._RunState(learner, directory, 2)
        state._step.assign(step)
        state.manager.save(checkpoint_number=step)
    resumed = meta_learning._RunState(learner, scratch, 2, restore_from=chief_dir)
    assert resumed.step == resumed.restored_step == 4
    assert resumed.manager.directory == scratch  # ...and it still saves to its scratch folder
    fresh = meta_learning._RunState(learner, scratch, 2,
                                    restore_from=str(tmp_path / "elsewhere" / "checkpoints"))
    assert fresh.restored_step is None


def test_a_worker_keeps_its_own_data_position_when_it_has_the_same_step(tmp_path):
    """Weights come from the chief's checkpoint; the position in the data stream from the worker's
    own one of the same step (its shard subset's epochs differ in length from the chief's)."""
    config = config_lib.get_preset("tiny", {"train.content_loss": "pixel_l1"})
    learner = meta_learning.MetaLearner(config, 6)
    chief_dir = distribute.chief_checkpoint_directory(str(tmp_path))
    scratch = str(tmp_path / ".worker-scratch" / "worker-1")
    for directory, position in ((chief_dir, (2, 5)), (scratch, (3, 1))):
        state = meta_learning._RunState(learner, directory, 2)
        state._step.assign(4)
        state.next_epoch.assign(position[0])
        state.next_position.assign(position[1])
        state.manager.save(checkpoint_number=4)
    resumed = meta_learning._RunState(learner, scratch, 2, restore_from=chief_dir)
    assert resumed.step == 4
    assert (int(resumed.next_epoch), int(resumed.next_position)) == (3, 1)
    chief = meta_learning._RunState(learner, chief_dir, 2, restore_from=chief_dir)
    assert (int(chief.next_epoch), int(chief.next_position)) == (2, 5)


# ---------------------------------------------------------------------------------------------
# Two workers on this machine (TF_CONFIG on loopback ports).

def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_two_workers(records, workdirs, steps, logs, timeout=240):
    """train/meta_train.py --strategy=multi_worker on two local workers (worker 0 is the chief),
    each with its own --workdir; both are killed after `timeout` s. Returns [(exit code, stdout,
    stderr)] per worker."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    processes, files = [], []
    try:
        for index, workdir in enumerate(workdirs):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            # Files, not pipes: a worker blocked on a full pipe would stall the other's collectives.
            out, err = (open(logs / f"worker{index}.{kind}", "w+") for kind in ("out", "err"))
            files += [out, err]
            processes.append(subprocess.Popen(
                [sys.executable, os.path.join(REPO, "train/meta_train.py"), "--preset=tiny",
                 f"--data={records}", f"--workdir={workdir}", "--content_loss=pixel_l1",
                 "--strategy=multi_worker", f"--steps={steps}", "--checkpoint_every=2",
                 "--log_every=1", "--image_every=0"], env=env, stdout=out, stderr=err))
        deadline = time.time() + timeout
        for process in processes:
            try:
                process.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"the two workers took more than {timeout} s (logs in {logs})")
        results = []
        for process, out, err in zip(processes, files[::2], files[1::2]):
            out.seek(0)
            err.seek(0)
            results.append((process.returncode, out.read(), err.read()))
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for f in files:
            f.close()


def read_files(directory):
    return {name: open(os.path.join(directory, name), "rb").read()
            for name in sorted(os.listdir(directory))}


@pytest.mark.slow
def test_two_workers_resume_together_and_stop_when_one_cannot_see_the_checkpoints(
        tiny_records_one_per_shard, tmp_path):
    records = tiny_records_one_per_shard
    shared, elsewhere = tmp_path / "shared", tmp_path / "elsewhere"
    checkpoints = shared / "checkpoints"

    def run(workdirs, steps, name):
        (tmp_path / f"logs-{name}").mkdir()
        return run_two_workers(records, workdirs, steps, tmp_path / f"logs-{name}")

    # 2 steps on one worker (what the CLI's flags make), then both workers resume it to 3.
    meta_learning.train(config_lib.get_preset("tiny", {"train.content_loss": "pixel_l1"}),
                        meta_learning.MetaTrainOptions(
                            data=records, workdir=str(shared), steps=2, log_every=1,
                            image_every=0, checkpoint_every=2))
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-2")
    for code, out, err in run([shared, shared], 3, "resumed"):
        assert code == 0, err[-3000:]
        # The non-chief too resumes from the chief's checkpoint, not from its scratch folder.
        assert f"Resumed from {checkpoints / 'ckpt-2'} (step 2)" in err
        assert "at step 3" in out

    # The non-chief cannot see the chief's files (another, empty workdir): both stop at once,
    # before any step or save, with one clear error.
    before = read_files(checkpoints)
    for code, out, err in run([shared, elsewhere], 5, "elsewhere"):
        assert code != 0, err[-3000:]
        assert ("The workers resumed from different checkpoints: worker 0 (the chief) step 3, "
                "worker 1 step 0 (no checkpoint in its --workdir)") in err
        assert "shared filesystem" in err and "Traceback" not in err
        assert "meta-train step" not in err
    assert read_files(checkpoints) == before
    assert not (elsewhere / "checkpoints").exists()
