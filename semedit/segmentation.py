"""The segment classes every layer shares: names, ids and display colours (renderer labels, segmenters,
photo label maps, ChunkyGAN masks)."""
import numpy as np

CLASS_NAMES = ("background", "skin", "hair", "eyes", "brows", "mouth", "beard", "glasses",
               "neck_clothes", "accessory")
NUM_CLASSES = len(CLASS_NAMES)
BACKGROUND, SKIN, HAIR, EYES, BROWS, MOUTH, BEARD, GLASSES, NECK_CLOTHES, ACCESSORY = range(NUM_CLASSES)

#: uint8 RGB colour per class, for showing label maps
PALETTE = np.array([
    (0, 0, 0), (230, 180, 150), (120, 60, 20), (60, 120, 255), (90, 50, 30),
    (220, 40, 60), (160, 110, 60), (240, 240, 60), (60, 170, 90), (200, 60, 220)], dtype=np.uint8)


def colorize(labels: np.ndarray) -> np.ndarray:
    """Label map [..., H, W] of class ids -> uint8 RGB [..., H, W, 3]."""
    return PALETTE[np.asarray(labels)]
