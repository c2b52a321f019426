"""Training (TensorFlow/Keras): pure loss terms (`losses`), what each loop minimises
(`objectives`), the pretrained feature networks (`feature_networks`, `face_net`), the lazy
optimizer for W (`optimizers`), what every loop shares (`loop`, `distribute`), and the three loops:
meta-learning, fine-tuning, distillation."""
