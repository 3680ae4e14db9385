"""Published neuron families of InceptionV1, as lists of channel indices.

The channel lists are facts published with the Distill Circuits articles; they are
encoded here as plain Python data. Sources (public repositories, path @ commit):

- "An Overview of Early Vision in InceptionV1":
  distillpub/post--circuits-early-overview @ a7836064, ``layer_data/<layer>.json``.
  conv2d0 .. mixed3b are complete partitions of each layer's channels; the mixed4a ..
  mixed4d lists are partial (and may overlap). Family order and the order of the
  channels inside each family are as published.
- "Curve Detectors": distillpub/post--circuits-curve-detectors @ fa89dbf,
  ``pages/data/curves-<layer>.json`` (the tuning-curve neuron orders).
- "Curve Circuits": distillpub/post--circuits-curve-circuits @ 225a57f,
  ``pages/lines/radial/index.js`` (the 3a line sub-families).

`circuits.families` builds the registry (names, aliases, lookups) from this data.
"""

# layer -> [(published family name, [channels])], in the published order.
EARLY_VISION: dict[str, list[tuple[str, list[int]]]] = {
    'conv2d0': [
        ('Gabor Filters', [
            9, 53, 54, 15, 22, 39, 30, 1, 3, 49, 14, 17, 62, 20, 27, 0, 10, 28, 21, 63, 45, 18, 6,
            57, 41, 43, 46, 8
        ]),
        ('Color Contrast', [
            59, 23, 5, 7, 48, 29, 12, 24, 55, 13, 32, 50, 36, 37, 16, 11, 33, 34, 47, 38, 58, 2, 60,
            61, 4, 51, 25
        ]),
        ('Other Units', [19, 26, 31, 35, 40, 42, 44, 52, 56]),
    ],
    'conv2d1': [
        ('Color', [2, 48, 36, 46]),
        ('Multicolor', [3, 33, 35, 40, 17, 16, 57, 26, 31]),
        ('Color Contrast', [5, 9, 10, 12, 20, 21, 42, 45, 50, 53]),
        ('Low Frequency', [1, 13, 27, 47, 56, 60, 23, 49, 0, 43, 28, 29, 34, 8, 37, 19, 15]),
        ('Complex Gabor', [51, 58, 30, 25, 52, 54, 22, 61, 55]),
        ('hatch', [14]),
        ('Gabor Like', [4, 6, 32, 38, 41, 63, 7, 11, 18, 24, 39]),
        ('Other Units', [44, 62, 59]),
    ],
    'conv2d2': [
        ('Tiny Curves', [182, 117, 171, 111, 63, 130, 146, 180, 39, 140, 32, 80]),
        ('Early Brightness Gradient', [94, 142, 99, 104, 163, 188, 98, 165, 83, 79, 128, 5]),
        ('Line Divergence', [137, 53]),
        ('Color Contrast', [
            10, 36, 172, 56, 131, 176, 35, 41, 45, 126, 77, 120, 101, 0, 43, 62, 106, 169, 127, 6,
            68, 60, 134, 51, 74, 85, 115, 24, 14, 16, 151, 168, 19, 7, 88, 177, 183, 76, 70, 122
        ]),
        ('Gabor Textures', [89, 91, 110, 114, 123, 135, 139, 143, 144, 167, 173, 118]),
        ('Hatch Textures', [164, 184, 28, 121, 159, 102]),
        ('Texture Contrast', [1, 37, 71, 73, 105, 147, 178, 181]),
        ('Textures', [21, 52, 59, 119, 148, 161, 162, 186, 189, 191, 72, 46, 67, 40, 38]),
        ('Line', [
            107, 31, 9, 112, 133, 103, 97, 125, 20, 33, 113, 185, 150, 166, 157, 57, 145, 48, 55,
            15, 152, 11, 141, 174, 44, 170, 27, 100, 30, 82, 65, 3, 108
        ]),
        ('Corners', [47, 87, 95, 26]),
        ('Shifted Line', [116, 61, 8, 22, 69, 96, 78, 18, 17, 132, 190, 64, 81, 154, 179, 136]),
        ('Color/Multicolor', [58, 75, 92, 42, 12]),
        ('Color Center-Surround', [155, 34, 156, 13, 49, 138, 23, 160, 86, 124, 25, 4, 29]),
        ('Other Units', [2, 50, 54, 66, 84, 90, 93, 109, 129, 149, 153, 158, 175, 187]),
    ],
    'mixed3a': [
        ('Fur Precursors', [46, 47, 26, 63, 80, 23, 16]),
        ('Eyes / Small Circles', [174, 168, 79, 125, 175]),
        ('High-Low Frequency', [110, 180, 153, 106, 112, 186, 132, 136, 117, 113, 108, 70, 86, 88, 160]),
        ('Brightness Gradient', [216, 127, 22, 182, 162, 25, 249, 15, 28, 59, 29, 196, 206, 18, 247]),
        ('BW vs Color', [214, 208, 201, 223, 210, 197, 222, 204, 220]),
        ('Color Contrast', [195, 84, 85, 123, 203, 217, 199, 211, 205, 212, 202, 200, 138, 32]),
        ('Color Center-Surround', [
            119, 34, 167, 76, 19, 30, 131, 251, 226, 13, 7, 50, 1, 4, 41, 192, 36, 40, 103, 213, 10,
            35, 221, 193, 158, 73, 74, 177, 97, 141
        ]),
        ('Texture', [
            246, 242, 253, 232, 233, 209, 139, 65, 44, 51, 194, 207, 111, 218, 224, 225, 215, 198,
            62, 21, 254, 255, 61, 2, 3, 8, 12, 53, 56, 102, 148, 244, 250, 11, 238, 248, 9, 219,
            234, 252, 236, 5, 183, 241, 229, 93, 243, 99, 45, 33, 135, 231, 60, 235, 48, 55, 42,
            151, 54, 72, 6, 239, 66, 129, 245
        ]),
        ('Angles', [188, 94, 164, 107, 77, 157, 149, 100]),
        ('Repeating patterns', [237, 31, 17, 20, 39, 126, 124, 156, 98, 105, 230, 228]),
        ('Complex Center-Surround', [178, 181, 161, 166, 172, 68, 130, 49, 52, 114, 115, 120, 144, 37]),
        ('Curves', [81, 104, 92, 145, 95, 163, 171, 71, 147, 189, 137]),
        ('Crosses / Diverging Lines', [91, 185, 64, 118]),
        ('Line Ends', [133, 96]),
        ('Line Misc.', [191, 121, 116, 14, 24, 0, 159, 152, 165, 83, 173, 87, 90, 82]),
        ('Thick Lines', [140, 78, 89]),
        ('Lines', [227, 75, 146, 69, 169, 57, 154, 187, 27, 134, 150, 240, 101, 176]),
        ('Other Units', [38, 43, 58, 67, 190, 109, 122, 128, 142, 143, 155, 170, 179, 184]),
    ],
    'mixed3b': [
        ('Other Fur', [472, 476, 477, 453, 454, 427, 449, 467, 64, 129]),
        ('Texture', [
            3, 40, 32, 54, 74, 309, 267, 438, 416, 440, 460, 276, 458, 132, 133, 106, 120, 123, 426,
            434, 429, 445, 452, 456, 459, 464, 465, 421, 437, 418, 425, 221, 195, 204, 39, 76, 77,
            468, 471, 227, 415, 126, 128, 172
        ]),
        ('Color Center-Surround', [
            285, 451, 208, 122, 93, 75, 46, 294, 44, 247, 91, 14, 10, 271, 60, 80, 84, 70, 202, 422,
            48, 436, 65, 300, 105, 34, 121, 424, 457, 186, 23, 479, 89, 283, 22, 124, 6, 9, 50, 5,
            71, 59, 182, 87, 308, 428, 109, 141, 12, 474, 112, 192, 2, 177, 249, 281, 284, 30, 27,
            255, 53, 432, 475, 79, 67, 25, 351, 420, 152, 26, 193, 448, 153, 164, 113, 216, 259
        ]),
        ('Complex Center-Surround', [
            299, 139, 7, 170, 16, 28, 291, 439, 443, 69, 11, 13, 56, 116, 117, 72, 36, 35, 41, 51,
            55, 88, 101, 110, 114, 158, 161, 169, 176, 215, 228, 230, 232, 233, 234, 238, 242, 244,
            245, 252, 256, 275, 280, 290, 296, 297, 302, 310, 410, 442, 17, 8, 15, 18, 20, 24, 31,
            37, 42, 61, 73, 92, 315, 103, 104, 118, 119, 131, 274, 278, 289, 29, 147
        ]),
        ('Lines', [377, 326, 95, 38, 307, 1, 19, 209, 210]),
        ('Brightness Gradients', [0, 317, 136, 455, 417, 469]),
        ('Generic, Oriented Fur', [57, 387, 404, 333, 375, 381, 335, 378, 62, 52]),
        ('Eyes', [370, 352, 363, 322, 83, 199]),
        ('Circle Cluster', [446, 462, 82]),
        ('Boundary', [
            220, 402, 364, 293, 356, 151, 203, 394, 376, 400, 328, 219, 320, 313, 329, 321, 251,
            298, 257, 143, 366, 345, 405, 414, 301, 368, 398, 383, 396, 261, 184, 144, 360, 183,
            239, 386
        ]),
        ('Curves', [379, 406, 385, 343, 342, 388, 340, 330, 349, 324]),
        ('Double Curves', [359, 337, 380]),
        ('Curves misc.', [348, 407, 365, 367]),
        ('Shallow Curves', [403, 353, 355, 336]),
        ('Curve Shapes', [325, 338, 327, 347]),
        ('Divots', [395, 159, 237, 409, 357, 190, 212, 211, 198, 218]),
        ('Cross / Corner Divergence', [108, 47, 339, 344, 374, 99, 369, 236, 408]),
        ('Square / Grid', [392, 361, 401, 68, 341, 382, 397, 66, 125]),
        ('Evolute', [373]),
        ('Circles / Loops', [389, 384, 346, 323]),
        ('Line Grad', [21, 63, 102, 423, 175]),
        ('Shiny', [173, 200]),
        ('Pattern', [157, 431, 444, 311, 470, 33, 115, 316, 372]),
        ('Double Boundary', [318, 332, 286, 258, 229, 138, 314]),
        ('Bar / Line-Like', [81, 97, 98, 107, 282, 288, 295]),
        ('Scales', [461, 466, 90, 478, 419]),
        ('Proto-Head', [362, 413, 334, 331, 174, 225, 393, 185, 435, 180, 441, 163]),
        ('Bumps', [167, 206, 312, 292, 194, 140, 223, 254]),
        ('Color Contrast/Gradient', [
            4, 217, 450, 191, 287, 49, 196, 473, 430, 305, 447, 277, 165, 279, 226, 303, 224, 269,
            264, 189, 156, 463, 270, 272
        ]),
        ('Boundary Misc', [149, 130, 168, 243, 246, 160, 162]),
        ('Star', [263, 262, 205, 135, 94, 304]),
        ('Pointy', [166, 111]),
        ('Texture Contrast', [319, 155, 201, 171, 178, 197, 260, 412, 248, 250, 241, 390]),
        ('Other Units', [
            43, 45, 58, 78, 85, 86, 96, 100, 127, 134, 137, 142, 145, 146, 148, 150, 154, 179, 181,
            187, 188, 207, 213, 214, 222, 231, 235, 240, 253, 265, 266, 268, 273, 306, 350, 354,
            358, 371, 391, 399, 411, 433
        ]),
    ],
    'mixed4a': [
        ('mixed4a_fur', [223, 244, 287, 232, 27, 81, 263, 462]),
        ('Oriented Dog Heads', [308, 222, 234, 325]),
        ('Other Dog Heads', [199, 498, 240, 295, 201, 268, 368, 246, 207, 300]),
        ('mixed4a_head_part', [501, 379, 310, 502, 236, 352, 299]),
        ('mixed4a_body_posture', [371]),
        ('mixed4a_any_boundary', [
            400, 356, 290, 253, 356, 254, 233, 255, 265, 307, 374, 212, 388, 344, 210, 224, 327,
            213, 330, 239, 247, 267, 229, 252, 262, 286, 259, 261, 273, 285, 206, 279, 293, 296,
            329, 348, 312, 200, 215, 230, 197, 372, 359, 105, 353, 204, 375, 349, 284, 340, 408,
            292, 294
        ]),
        ('mixed4a_curves', [403, 417, 407, 415, 50, 426, 168, 266]),
        ('mixed4a_circles', [402]),
        ('mixed4a_divot', [298, 358, 362]),
        ('mixed4a_S', [26, 458]),
        ('mixed4a_watermark', [328]),
        ('mixed4a_car', [331, 363]),
        ('mixed4a_high_low_2', [245, 93, 392, 301]),
        ('mixed4a_column_things', [156, 205, 218, 235, 364, 454, 187, 198]),
        ('mixed4a_complex_or_3d_shapes', [
            397, 398, 399, 401, 406, 409, 410, 411, 412, 418, 429, 421, 423, 324, 425, 428, 429,
            430, 431, 432, 433, 434, 436, 437, 438, 440, 441, 442, 443
        ]),
        ('mixed4a_color_centers', [
            128, 178, 170, 180, 185, 5, 33, 24, 10, 121, 107, 118, 35, 47, 19, 122, 174, 154, 123,
            49, 76, 90, 155
        ]),
        ('mixed4a_humans', [55, 391, 333, 489]),
        ('Animal related', [
            42, 59, 60, 71, 77, 100, 166, 192, 220, 221, 242, 260, 272, 282, 318, 337, 338, 355,
            357, 367, 383, 395, 444, 460
        ]),
        ('Plants', [459, 461, 475]),
        ('Complex Shapes and Curvature', [
            397, 398, 399, 401, 406, 409, 410, 411, 412, 418, 429, 421, 423, 324, 425, 428, 429,
            430, 431, 432, 433, 434, 436, 437, 438, 440, 441, 442, 443, 403, 417, 407, 415, 50, 426,
            168, 266, 26, 458
        ]),
    ],
    'mixed4b': [
        ('Fur boundary / posture', [
            431, 443, 416, 412, 429, 414, 384, 425, 408, 436, 397, 406, 398, 422, 404, 199, 420,
            393, 439, 434, 401
        ]),
        ('Human boundary / posture', [391, 411, 405, 44, 475]),
        ('Dog Heads', [270, 328, 329, 400, 402, 403, 409, 418, 345, 325, 327, 336, 324, 339, 327, 370, 260, 165]),
        ('Square Things', [474, 467, 169, 202, 237]),
        ('Curves', [482, 426, 253, 226, 193, 142, 96, 502]),
        ('Color Center-Surround', [90, 88, 80, 5, 72, 26, 120, 149, 139]),
        ('Evolute / Diverge', [39]),
        ('Counting?', [256]),
    ],
    'mixed4c': [
        ('Car', [447]),
        ('Head shifted / Oriented / boundary', [394, 387, 388, 418, 416, 414, 410, 409, 407, 406, 392, 390, 178, 160, 398]),
        ('Counting? Gap between objects?', [415]),
        ('Curves', [190, 321]),
        ('Color Center-Surround', [11, 23, 76, 104, 107, 43]),
    ],
    'mixed4d': [
        ('Dog Ears', [426, 436]),
        ('Person Beside Dog', [429, 427]),
        ('Person', [432, 458, 354, 227]),
    ],
}

# Layers whose EARLY_VISION families partition every channel.
COMPLETE_LAYERS = ("conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b")

# Orders and subsets the articles use (layer, [channels]).
ARTICLE_SETS: dict[str, tuple[str, list[int]]] = {
    # Curve Detectors: radial tuning-curve order of the 3a early curves.
    'curve_detectors_mixed3a_curves': ('mixed3a', [81, 104, 92, 145, 95, 163, 171, 71, 147, 189, 137]),
    # Curve Detectors / Curve Circuits: the 3b curve family, article order.
    'curve_detectors_mixed3b_curves': ('mixed3b', [379, 406, 385, 343, 342, 388, 324, 340, 330, 349]),
    # Curve Detectors: conv2d2 curves (the tiny curves), radial order.
    'curve_detectors_conv2d2_curves': ('conv2d2', [32, 171, 111, 80, 140, 180, 39, 130, 63, 182, 117]),
    # Curve Detectors: mixed4a curves, radial tuning set.
    'curve_detectors_mixed4a_curves': ('mixed4a', [26, 50, 58, 62, 95, 168, 403, 406, 407, 415, 424, 428, 436, 437]),
    # Curve Circuits: the 3a lines (adds 0, omits 187, 101, 176 vs Early Vision).
    'curve_circuits_mixed3a_lines': ('mixed3a', [227, 0, 75, 146, 69, 169, 57, 154, 27, 134, 150, 240]),
    'curve_circuits_mixed3a_texture_lines': ('mixed3a', [47, 142, 6, 101, 16]),
    'curve_circuits_mixed3a_cliffs': ('mixed3a', [176, 96, 77, 149, 100]),
    # High-Low Frequency Detectors: the 14 units the article studies.
    'frequency_edges_mixed3a_high_low': ('mixed3a', [136, 108, 132, 88, 110, 180, 153, 186, 86, 117, 112, 70, 106, 113]),
}
