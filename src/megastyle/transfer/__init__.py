"""Part 4: style transfer — MegaStyle-FLUX on diffusers."""
