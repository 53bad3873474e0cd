"""Faces in photographs: mediapipe landmarks, FFHQ alignment with paste-back, pose, segments."""
