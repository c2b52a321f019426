"""Animation without TensorFlow: the driving source and motion mapping (`driving`) and the one
reenactment loop (`reenact`) that `tfhead-animate` runs with a Keras person model and
`tfhead-edge` with a TFLite file."""
