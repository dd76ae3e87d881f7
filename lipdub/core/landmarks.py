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

# render: nose base and upper cheeks, the top edge of the replaced lower face
UPPER_EDGE = [2, 97, 326, 98, 327, 129, 358, 203, 423, 36, 266, 205, 425, 50, 280, 187, 411, 147, 376, 123, 352]
# render: lower-face points between the lips, the jaw and the upper edge (the warp's control points with those)
LOWER_FACE = [57, 287, 43, 273, 106, 335, 182, 406, 83, 313, 18, 200, 199, 175, 32, 262, 140, 369, 171, 396,
              208, 428, 214, 434, 212, 432, 202, 422, 210, 430, 169, 394, 135, 364, 138, 367, 192, 416, 207, 427,
              216, 436, 204, 424, 194, 418, 201, 421, 164, 167, 393, 165, 391, 92, 322, 186, 410]
# render: the face outline (forehead round to the chin) and the nose, moved by the whole-face warp
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
NOSE = [168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 129, 358, 48, 278]

# Eyes, brows and cheeks (expression: blinks, brow raises, emotions).
RIGHT_UPPER_LID = [246, 161, 160, 159, 158, 157, 173]  # subject's right eye (image left), corner 33 .. 133
RIGHT_LOWER_LID = [7, 163, 144, 145, 153, 154, 155]
LEFT_UPPER_LID = [466, 388, 387, 386, 385, 384, 398]  # corner 263 .. 362
LEFT_LOWER_LID = [249, 390, 373, 374, 380, 381, 382]
RIGHT_LID_SKIN = [247, 30, 29, 27, 28, 56, 190]  # skin between upper lid and brow: stretches over a closing eye
LEFT_LID_SKIN = [467, 260, 259, 257, 258, 286, 414]
RIGHT_BROW = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]  # outer .. inner (upper row, then lower row)
LEFT_BROW = [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]
RIGHT_BROW_INNER, LEFT_BROW_INNER = [107, 66, 55, 65], [336, 296, 285, 295]
RIGHT_BROW_OUTER, LEFT_BROW_OUTER = [70, 46, 63, 53], [300, 276, 293, 283]
RIGHT_CHEEK, LEFT_CHEEK = [205, 50, 123, 187, 207, 216], [425, 280, 352, 411, 427, 436]
MOUTH_CORNERS = (61, 291)
UPPER_FACE = sorted(set(RIGHT_UPPER_LID + RIGHT_LOWER_LID + LEFT_UPPER_LID + LEFT_LOWER_LID + RIGHT_LID_SKIN +
                        LEFT_LID_SKIN + RIGHT_BROW + LEFT_BROW + RIGHT_CHEEK + LEFT_CHEEK + [33, 133, 263, 362]))

