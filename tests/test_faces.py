"""Faces in real photographs (../shared/testdata/faces): alignment, paste-back, pose, segments."""
import numpy as np
import pytest
import torch
from PIL import Image

from semedit.faces.alignment import align, paste_back
from semedit.faces.landmarks import NOSE_TIP, Face, NoFaceError, detect_faces, pick_face
from semedit.faces.pose import head_pose, smile
from semedit.faces.segments import crop_labels, own_person, photo_labels
from semedit.imaging import load_image
from semedit.settings import PROJECT_ROOT
from semedit import segmentation as L

FACES = PROJECT_ROOT.parent / "shared" / "testdata" / "faces"
#: where the FFHQ recipe puts the eye centres when the eye distance sets the crop's scale
CANONICAL_EYES_X = (0.375, 0.625)


def photo(name):
    """A test photograph: a file of ../shared/testdata/faces (the test is skipped where that
    folder is not beside the clone), or scikit-image's astronaut (always there)."""
    if name == "astronaut":
        from skimage.data import astronaut
        return Image.fromarray(astronaut())
    if not FACES.is_dir():
        pytest.skip("needs ../shared/testdata/faces beside the clone")
    return load_image(FACES / name)


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "obama_small.jpg", "obama_partial_face.jpg", "astronaut"])
def test_alignment_puts_the_eyes_where_ffhq_does(name):
    img = photo(name)
    face = pick_face(np.asarray(img))
    crop, al = align(img, face, 256)
    assert crop.size == (256, 256)
    eyes = al.photo_to_crop(face.eyes())
    assert np.abs(eyes[:, 0] - np.array(CANONICAL_EYES_X) * 256).max() < 3
    assert np.abs(eyes[:, 1] - 0.47 * 256).max() < 8  # a little above the centre, level
    np.testing.assert_allclose(al.crop_to_photo(eyes), face.eyes(), atol=1e-6)


def test_the_crop_finds_the_same_eyes_again():
    img = photo("obama.jpg")
    crop, al = align(img, pick_face(np.asarray(img)), 256)
    again = pick_face(np.asarray(crop)).eyes()
    assert np.abs(again - al.photo_to_crop(pick_face(np.asarray(img)).eyes())).max() < 4


@pytest.mark.parametrize("name", ["obama.jpg", "two_people.jpg", "obama_partial_face.jpg", "astronaut"])
def test_paste_back_round_trip_keeps_the_photo(name):
    img = photo(name)
    arr = np.asarray(img, dtype=np.float64)
    crop, al = align(img, pick_face(np.asarray(img)), 256)
    back = np.asarray(paste_back(img, crop, al), dtype=np.float64)
    assert back.shape == arr.shape  # original resolution
    assert np.abs(back - arr).mean() < 3  # an unedited crop changes almost nothing
    edited = Image.new("RGB", crop.size, (0, 255, 0))
    changed = np.abs(np.asarray(paste_back(img, edited, al), dtype=np.float64) - arr).max(2) > 40
    corners = np.array([al.quad.min(0), al.quad.max(0)])
    outside = np.ones(changed.shape, bool)
    (x0, y0), (x1, y1) = np.floor(corners[0]).astype(int), np.ceil(corners[1]).astype(int)
    outside[max(y0, 0):y1, max(x0, 0):x1] = False
    assert not changed[outside].any()  # nothing outside the crop moves
    cy, cx = face_centre(al)
    assert changed[cy, cx]  # the face itself was replaced


def face_centre(al):
    c = al.quad.mean(0)
    return int(c[1]), int(c[0])


def test_several_faces_largest_first_and_by_index():
    arr = np.asarray(photo("two_people.jpg"))
    faces = detect_faces(arr)
    assert len(faces) == 2 and faces[0].area >= faces[1].area
    assert pick_face(arr, 1).area == faces[1].area
    with pytest.raises(NoFaceError, match="has 2"):
        pick_face(arr, 2)


def on_canvas(size, placed):
    """A grey canvas (w, h) with photos pasted on it: [(name, x, y, width)] -> uint8 [H, W, 3]."""
    canvas = Image.new("RGB", size, (120, 130, 140))
    for name, x, y, width in placed:
        img = photo(name)
        canvas.paste(img.resize((width, round(width * img.height / img.width))), (x, y))
    return np.asarray(canvas)


def test_faces_of_a_wide_group_photo_are_all_found_once():
    """Five people in a 4000 x 900 row: the detector's own input sees none of them at full size."""
    arr = on_canvas((4000, 900), [("obama.jpg", 100, 50, 800), ("biden.jpg", 1100, 0, 400),
                                  ("obama.jpg", 2000, 100, 700), ("two_people.jpg", 2800, 100, 1100)])
    faces = detect_faces(arr)
    assert len(faces) == 5
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in faces)
    assert np.all(np.diff(centres) > 100)  # five different places, no face counted twice
    for f in faces:  # every box is a face-sized box inside the canvas
        left, top, right, bottom = f.box
        assert 0 <= left < right <= 4000 and 0 <= top < bottom <= 900 and 80 < right - left < 400


def test_a_small_face_in_a_large_photo_is_found_and_aligned():
    arr = on_canvas((3000, 2000), [("obama.jpg", 1200, 800, 300)])
    face = pick_face(arr)
    left, top, right, bottom = face.box
    assert 1200 < left < right < 1500 and 800 < top < bottom < 1200
    crop, al = align(Image.fromarray(arr), face, 256)
    eyes = al.photo_to_crop(face.eyes())
    assert np.abs(eyes[:, 0] - np.array(CANONICAL_EYES_X) * 256).max() < 3


def test_no_face_is_a_clear_error():
    with pytest.raises(NoFaceError, match="no face"):
        pick_face(np.full((200, 200, 3), 128, np.uint8))


def test_pose_mirrors_and_smile_ranks():
    arr = np.asarray(photo("biden.jpg"))
    pose, mirrored = head_pose(pick_face(arr)), head_pose(pick_face(arr[:, ::-1].copy()))
    assert abs(pose.yaw + mirrored.yaw) < 3 and abs(pose.roll + mirrored.roll) < 3
    assert abs(pose.yaw) > 5  # biden.jpg is turned
    assert abs(head_pose(pick_face(np.asarray(photo("obama.jpg")))).yaw) < 6  # obama.jpg looks ahead
    assert smile(pick_face(np.asarray(photo("obama.jpg")))) > smile(pick_face(arr)) + 0.05  # grin vs closed mouth


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "astronaut"])
def test_photo_segments(name):
    arr = np.asarray(photo(name))
    face = pick_face(arr)
    labels = photo_labels(arr, face)
    assert labels.shape == arr.shape[:2]
    for x, y in face.eyes().astype(int):
        assert labels[y, x] == L.EYES
    top = int(face.box[1])
    assert (labels[max(top - 15, 0):top, int(face.box[0]):int(face.box[2])] == L.HAIR).mean() > 0.3
    assert labels[0, 0] == L.BACKGROUND and labels[-1, arr.shape[1] // 2] == L.NECK_CLOTHES
    assert (labels == L.MOUTH).any() and (labels == L.SKIN).sum() > (labels == L.EYES).sum()


def test_identity_same_person_closer_than_different_people():
    """The offline identity model on aligned crops of real photographs: Obama in two different
    photographs is closer than Obama and Biden, and everyone differs from the astronaut."""
    from semedit.networks.identity import load_face_descriptor
    identity = load_face_descriptor(PROJECT_ROOT / "weights" / "face-api-recognition.safetensors")
    crops = {}
    for name, index, who in [("obama.jpg", 0, "obama"), ("two_people.jpg", 1, "obama 2"), ("biden.jpg", 0, "biden"),
                             ("two_people.jpg", 0, "biden 2"), ("astronaut", 0, "astronaut")]:
        img = photo(name)
        crop, _ = align(img, pick_face(np.asarray(img), index), 256)
        crops[who] = torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        d = {(a, b): float(identity(crops[a], crops[b])) for a in crops for b in crops}
    assert d["obama", "obama 2"] < 0.6 and d["biden", "biden 2"] < 0.6
    for a, b in [("obama", "biden"), ("obama 2", "biden 2"), ("obama", "astronaut"), ("biden", "astronaut")]:
        assert d[a, b] > 0.6
    assert max(d["obama", "obama 2"], d["biden", "biden 2"]) < min(d["obama", "biden"], d["obama 2", "biden 2"])


@pytest.mark.parametrize("index", [0, 1])
def test_segments_keep_only_the_chosen_person(index):
    """two_people.jpg: the other person (face, hair, suit) is background in the chosen one's map."""
    arr = np.asarray(photo("two_people.jpg"))
    faces = detect_faces(arr)
    mine, other = faces[index], faces[1 - index]
    labels = photo_labels(arr, mine, [other])
    for f, expected in ((mine, L.SKIN), (other, L.BACKGROUND)):
        x, y = f.xy[NOSE_TIP].astype(int)
        assert labels[y, x] == expected
    left, top, right, bottom = other.box
    below = labels[int(bottom) + 20:, int(left):int(right)]  # the other person's suit
    assert (below == L.BACKGROUND).mean() > 0.9


def test_own_person_splits_touching_people_and_drops_strangers():
    """Two people joined in the person mask are split by the nearer face; a blob without a
    face, not connected to the chosen one, is dropped."""
    yy, xx = np.mgrid[:100, :200]
    person = (np.hypot(xx - 50, yy - 50) < 30) | (np.hypot(xx - 130, yy - 50) < 30) | (np.hypot(xx - 185, yy - 90) < 8)
    person[45:55, 50:130] = True  # the two touch

    def face_at(cx, cy):
        pts = np.zeros((478, 3))
        pts[:, 0], pts[:, 1] = cx + np.linspace(-10, 10, 478), cy + np.linspace(-12, 12, 478)
        return Face(pts)

    a, b = face_at(50, 50), face_at(130, 50)
    region = np.hypot(xx - 50, yy - 50) < 10
    own = own_person(person, region, a, [b])
    assert own[50, 30] and own[50, 80] and not own[50, 140] and not own[90, 185]
    assert own_person(person, region, a, [])[50, 140]  # without b's face the neighbour stays


def test_segments_follow_the_face_into_the_aligned_crop():
    img = photo("obama.jpg")
    arr = np.asarray(img)
    face = pick_face(arr)
    crop, al = align(img, face, 256)
    labels = crop_labels(photo_labels(arr, face), al)
    assert labels.shape == (256, 256) and labels.dtype == np.int64
    for x, y in np.round(al.photo_to_crop(face.eyes())).astype(int):
        assert labels[y, x] == L.EYES
    assert labels[250, 128] == L.NECK_CLOTHES and labels[5, 5] == L.BACKGROUND


def test_label_images_for_direction_fitting():
    """The labelling function works on image tensors: a mirrored face flips yaw and roll, the
    smile stays; an image without a face gives a row of NaN."""
    from semedit.faces.pose import LABELS, label_images
    from semedit.imaging import pil_to_tensor
    img = pil_to_tensor(photo("biden.jpg").resize((256, 582)))
    batch = torch.cat([img, img.flip(-1), torch.zeros_like(img)])
    labels = label_images(batch)
    assert labels.shape == (3, len(LABELS))
    assert abs(labels[0, 0] + labels[1, 0]) < 3 and abs(labels[0, 0]) > 5  # yaw flips
    assert abs(labels[0, 3] - labels[1, 3]) < 0.03  # smile does not
    assert np.isnan(labels[2]).all()


def test_mediapipe_notices_stay_out_of_the_log_and_other_output_stays_in():
    """A fresh process aligns and segments a photo: none of mediapipe's native start-up notices
    reach stderr, while a line written to descriptor 2 during detection still does."""
    import subprocess
    import sys
    code = ("import os; "
            "from semedit.faces.landmarks import detect_faces; from semedit.faces.segments import person_mask; "
            "from semedit.faces.quiet import mediapipe_notices_filtered; "
            "from skimage.data import astronaut; a = astronaut(); "
            "assert detect_faces(a) and person_mask(a).any()\n"
            "with mediapipe_notices_filtered(): os.write(2, b'a real problem\\n')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    assert "a real problem" in run.stderr
    for notice in ("XNNPACK", "absl::InitializeLog", "inference_feedback_manager", "landmark_projection"):
        assert notice not in run.stderr, run.stderr
