"""Numbers every stage agrees on, defined once."""

SR = 16000  # Hz: the speech analysis, motion models and voice activity all work on 16 kHz mono
HOP_SECONDS = 0.01  # s: one analysis frame (hop) of the speech features and motion curves
HOP = int(SR * HOP_SECONDS)  # samples per hop (160)
