"""Pixels <-> samples: the model's beat pictures, decoding and guarding user pictures, digitizing them."""
