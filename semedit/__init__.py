"""semedit: GAN-based semantic face editing (inversion, sliders, ChunkyGAN, hair transfer)."""

__version__ = "0.1.0"
