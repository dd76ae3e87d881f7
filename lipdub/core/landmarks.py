"""MediaPipe face-mesh landmark indices used across stages (478-point mesh)."""

# Lip contours, ordered corner to corner.
OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
OUTER_LOWER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
# Points fixed to the skull (forehead, nose bridge and base, eye corners, temples): the pose fit uses only these.
STABLE = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 33, 133, 362, 263, 127, 356, 234, 454, 122, 351]
EYE_OUTER = (33, 263)
# Jaw line from ear to ear through the chin, and the chin tip.
JAW = [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454]
CHIN = 152
