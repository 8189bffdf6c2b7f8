"""Grading of the `vae` assignment (autoencoder -> VAE on MNIST, latent space, CelebA bonus)."""
