"""Console scripts installed with tfhead (`tfhead-animate`, `tfhead-demo`, `tfhead-edge`).

They are entry points like `train/` and `export/`: absl apps that parse flags and call one library
function. They live outside `tfhead/` because the library never reads flags, and inside an
importable package because console scripts need one.
"""
