"""The book's core: MNIST, the shared weights and batches, the NumPy reference, parameters,
threads, timing, memory, records and the training loop. Imports NumPy only."""
