"""The networks (TensorFlow/Keras): ops → layers → blocks → the paper's three networks
(`networks`), the real-time student (`student`), person models (`person`), and FLOP counts."""
