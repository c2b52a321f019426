"""Training data: the record format (`records`), preprocessing videos into records
(`preprocess`), meta-learning episodes as tf.data (`episodes`), and small generated corpora for
tests, benchmarks and the demo (`corpora`)."""
