"""Encoders, decoders and the VAEs that pair them over one latent space."""
