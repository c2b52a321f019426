"""Does a TFLite model's latency follow the machine's speed of the moment? (issue 18: the int8
paper256 generator's median "jumps between two levels").

    .venv/bin/python benchmarks/machine_speed.py --model=demo_out/models/astronaut.int8.tflite
    .venv/bin/python benchmarks/machine_speed.py --model=/tmp/paper256.int8.tflite --iterations=60

Interleaves, in one process, a fixed reference workload (ten 1024² float32 matrix products in
NumPy's BLAS, reported as GFLOP/s) with the model (median of `--runs` invocations on 2 threads,
all-zero inputs: latency does not depend on the values), `--iterations` times, and prints both
series and the Pearson r between the model's ms and 1 / the reference rate. An r near 1 says the
model's level changes are the machine's (a shared host: the cores' speed moves by up to 2×
between hours on this project's machines), not something of the model or the runtime.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags

_MODEL = flags.DEFINE_string("model", None, "A .tflite file.", required=True)
_ITERATIONS = flags.DEFINE_integer("iterations", 30, "Interleaved measurements.", lower_bound=3)
_RUNS = flags.DEFINE_integer("runs", 3, "Model invocations per measurement (median).",
                             lower_bound=1)
_THREADS = flags.DEFINE_integer("threads", 2, "Interpreter threads.", lower_bound=1)


def reference_gflops(a: np.ndarray, repeats: int = 10) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return repeats * 2 * a.shape[0] ** 3 / (time.perf_counter() - start) / 1e9


def main(argv):
    del argv
    from ai_edge_litert.interpreter import Interpreter

    if not os.path.isfile(_MODEL.value):
        raise app.UsageError(f"--model={_MODEL.value} is not a file; give a .tflite file.")
    try:
        interpreter = Interpreter(model_path=_MODEL.value, num_threads=_THREADS.value)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise app.UsageError(f"--model={_MODEL.value} does not load as a TFLite model: {e}")
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    rates, latencies = [], []
    for i in range(_ITERATIONS.value):
        rates.append(reference_gflops(a))
        times = []
        for _ in range(_RUNS.value):
            start = time.perf_counter()
            interpreter.invoke()
            times.append(1e3 * (time.perf_counter() - start))
        latencies.append(statistics.median(times))
        print(f"{i + 1:3d}  reference {rates[-1]:6.1f} GFLOP/s   model {latencies[-1]:7.1f} ms",
              flush=True)
    rate, ms = np.array(rates), np.array(latencies)
    r = float(np.corrcoef(ms, 1.0 / rate)[0, 1]) if np.ptp(ms) > 0 and np.ptp(rate) > 0 else 0.0
    print()
    print("| | min | median | max | max / min |")
    print("|---|---:|---:|---:|---:|")
    print(f"| reference GFLOP/s | {rate.min():.0f} | {np.median(rate):.0f} | {rate.max():.0f} | "
          f"{rate.max() / rate.min():.2f} |")
    print(f"| model ms ({os.path.basename(_MODEL.value)}, {_THREADS.value} threads) | "
          f"{ms.min():.1f} | {np.median(ms):.1f} | {ms.max():.1f} | {ms.max() / ms.min():.2f} |")
    print(f"\nPearson r(model ms, 1 / reference rate) = {r:+.2f} over {len(ms)} measurements")


if __name__ == "__main__":
    app.run(main)
