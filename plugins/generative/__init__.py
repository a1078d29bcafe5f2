"""Generative models: GAN (DCGAN) with its trainer and sample scoring, language models."""
