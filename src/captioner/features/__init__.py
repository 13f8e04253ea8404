"""Image features: image loading, the encoder spec and preprocessing, the encoders, ImageNet's class names, cached
extraction."""
