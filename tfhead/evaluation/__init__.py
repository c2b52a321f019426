"""Evaluation: image and identity metrics (`metrics`) and the paper's self-reenactment protocol
(`evaluate`)."""
