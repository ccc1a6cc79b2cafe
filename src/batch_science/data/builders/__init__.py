"""Built-in tfds builders (generated offline): MNIST-1D and a synthetic text corpus."""
