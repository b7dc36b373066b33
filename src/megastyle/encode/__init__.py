"""Part 2: MegaStyle-Encoder — style encoders over vision towers and their SSCL training."""
