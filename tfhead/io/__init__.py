"""Files without TensorFlow: video reading and writing (OpenCV, ffmpeg), atomic writes and temporary
names, and the output-path rules every entry point follows (`outputs`)."""
