"""tfhead: few-shot neural talking heads (Zakharov et al., ICCV 2019) in TensorFlow 2 / Keras 3.

The packages show the layers (README, "Layout"; docs/design.md §13):

  without TensorFlow   config, errors, runtime; face/ (landmarks, crops, landmark images,
                       retargeting, shots, motion, procedural heads); io/ (video, atomic files,
                       output paths); animation/ (driving, the reenactment loop); edge/ (the
                       exported model file and its LiteRT runner)
  with TensorFlow      models/ (ops → layers → blocks → networks, the student, person models);
                       data/ (records, preprocessing, episodes, generated corpora); training/
                       (losses, objectives, feature networks, the three loops); evaluation/;
                       export (TFLite); demo

Importing the package is cheap and imports no TensorFlow; `tests/test_layout.py` imports every
module of the TensorFlow-free packages where TensorFlow cannot be imported.
"""

__version__ = "0.1.0"
