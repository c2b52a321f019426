"""Console scripts installed with the package (`tfhead-animate`, `tfhead-demo`)."""
