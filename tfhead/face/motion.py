"""Real faces in motion: landmark tracks around a face's own geometry, and the photo warped along
them (NumPy/OpenCV only).

* `motion_track`: a face's detected landmarks moved along smooth tracks — mouth opening, blinks,
  head turns up to 17° (a mean face's depth: the nose crosses the face), roll, scale and position
  changes — so the true landmarks of every frame are known. Fine-tuning draws its pairs from such
  tracks, export calibrates int8 on them, distillation renders them, tests and benchmarks make
  driving clips of real portraits from them.
* `PhotoWarper`: the photo warped piecewise affinely over a Delaunay triangulation of its
  landmarks, head points that carry the hair with the head, and fixed anchors to any target
  landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfhead.face import procedural, retarget

# ------------------------------------------------------------------------------------------------
# Landmark motion.

_UPPER_EYELIDS = {37: 41, 38: 40, 43: 47, 44: 46}   # upper lid point → lower lid point
_LOWER_LIP = list(range(55, 60)) + [65, 66, 67]
_CHIN = list(range(5, 12))
MAX_YAW = 0.3   # motion_track's largest head turn at amplitude 1, radians (17°)


def motion_track(base: np.ndarray, num_frames: int, seed: int, fps: float = 25.0,
                 amplitude: float = 1.0, max_yaw: float = MAX_YAW) -> np.ndarray:
    """Smooth landmark motion around `base` `[68, 2]`: `[num_frames, 68, 2]`.

    Mouth opening and closing, blinks every ~2–4 s, head turns up to `max_yaw` radians (default
    `MAX_YAW`, 17°) left and right, roll up to ~6°, scale changes up to ~6% and drift of a few
    percent of the face size. `amplitude` scales all of them (1 = defaults above).

    A turn moves each landmark by a mean face's depth (`procedural.pseudo_depth`, in widths of the
    face at its eyes, |p16 − p0| / 0.97): the nose tip goes furthest, the eyes less and the outline
    follows the head's silhouette (`procedural.turn_x`), so the nose moves across the face as it
    does when a real head turns — what a driver's turn becomes after retargeting, and what
    fine-tuning pairs have to show the model.
    """
    rng = np.random.default_rng(seed)
    base = np.asarray(base, np.float64)
    centre = base[27:36].mean(axis=0)
    size = float(np.ptp(base, axis=0).max())
    t = np.arange(num_frames) / fps
    phase = rng.uniform(0, 2 * np.pi, size=6)
    mouth = 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(0.6, 1.4) * t + phase[0]))  # 0..1
    mouth *= amplitude * rng.uniform(0.6, 1.0)
    blink_period = rng.uniform(2.0, 4.0)
    blink = np.clip(1 - np.abs(((t + phase[1]) % blink_period) - 0.15) / 0.12, 0, 1)
    yaw = amplitude * max_yaw * np.sin(2 * np.pi * 0.25 * t + phase[2])
    roll = amplitude * np.deg2rad(6.0) * np.sin(2 * np.pi * 0.18 * t + phase[3])
    scale = 1 + amplitude * 0.06 * np.sin(2 * np.pi * 0.13 * t + phase[4])
    drift = amplitude * 0.04 * size * np.stack(
        [np.sin(2 * np.pi * 0.1 * t + phase[5]), np.cos(2 * np.pi * 0.08 * t + phase[5])], axis=1)

    depth = procedural.pseudo_depth() * float(np.linalg.norm(base[16] - base[0])) / 0.97
    frames = []
    eye_height = np.mean([np.linalg.norm(base[u] - base[l]) for u, l in _UPPER_EYELIDS.items()])
    for i in range(num_frames):
        p = base.copy()
        open_px = mouth[i] * 0.12 * size
        p[_LOWER_LIP, 1] += open_px
        p[_CHIN, 1] += 0.6 * open_px * np.array([0.3, 0.6, 0.9, 1.0, 0.9, 0.6, 0.3])
        for upper, lower in _UPPER_EYELIDS.items():
            p[upper] += blink[i] * 0.85 * (p[lower] - p[upper]) * (eye_height > 0)
        rel = p - centre
        rel[:, 0] = procedural.turn_x(rel[:, 0], depth, yaw[i])
        c, s = np.cos(roll[i]), np.sin(roll[i])
        rel = rel @ np.array([[c, s], [-s, c]])
        frames.append(centre + drift[i] + scale[i] * rel)
    return np.stack(frames).astype(np.float32)


# The inner lips, in polygon order: upper 60–64, lower 64–67.
_INNER_LIPS = np.arange(60, 68)
_OUTER_LIPS = np.arange(48, 60)


def _lip_gap(points: np.ndarray) -> float:
    """Distance between the inner lips' middles (points 62 and 66)."""
    return float(np.linalg.norm(points[66] - points[62]))
MOUTH_INTERIOR_COLOUR = (45, 18, 22)   # RGB: a dark mouth interior


def _rest_pose(base: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The photo's own landmarks `base` moved rigidly with the head to `target`'s pose (the
    similarity that takes its rigid points to the target's): the face at rest in that pose."""
    return retarget.apply_similarity(base, *retarget.fit_similarity(
        base[retarget.RIGID_POINTS], target[retarget.RIGID_POINTS]))


def paint_mouth_gap(frame: np.ndarray, target: np.ndarray, base: np.ndarray,
                    colour=MOUTH_INTERIOR_COLOUR) -> np.ndarray:
    """A photo warped from `base` to `target` landmarks, with the mouth gap the warp opened
    painted as a soft-edged dark mouth interior.

    A piecewise-affine warp opens a mouth by stretching the lips (and a smile's teeth) over the
    gap; a real open mouth shows its dark interior there. The gap is the part of the target's
    inner-lip polygon (`target[60:68]`) outside the photo's own inner-lip polygon moved rigidly
    with the head (`base` under the similarity that takes its rigid points to the target's), so
    what the photo shows between its lips at rest (teeth of a smile) stays.

    Args:
      frame: The warped photo `[H, W, 3]` uint8.
      target: The landmarks it was warped to `[68, 2]`.
      base: The photo's own landmarks `[68, 2]`.
    """
    gap = _mouth_gap(frame.shape[:2], target, base)
    if not gap.any():
        return frame
    alpha = cv2.GaussianBlur(gap, (0, 0), 1.0).astype(np.float32)[..., None] / 255.0 * 0.9
    out = frame.astype(np.float32) * (1 - alpha) + alpha * np.array(colour, np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _mouth_gap(shape: tuple[int, int], target: np.ndarray, base: np.ndarray) -> np.ndarray:
    """uint8 `shape` mask (anti-aliased, 255 inside) of the mouth gap a warp from `base` to
    `target` opens: the target's inner-lip polygon minus the photo's own moved rigidly with the
    head (`paint_mouth_gap`)."""
    target = np.asarray(target, np.float64)
    rest = _rest_pose(np.asarray(base, np.float64), target)
    opened = np.zeros(shape, np.uint8)
    cv2.fillPoly(opened, [np.round(target[_INNER_LIPS] * 4).astype(np.int32)], 255,
                 cv2.LINE_AA, shift=2)
    before = np.zeros(shape, np.uint8)
    cv2.fillPoly(before, [np.round(rest[_INNER_LIPS] * 4).astype(np.int32)], 255,
                 cv2.LINE_AA, shift=2)
    return cv2.subtract(opened, before)


_EYES = (np.arange(36, 42), np.arange(42, 48))   # outer corner, upper lid ×2, inner, lower ×2


def _eye_opening(points: np.ndarray, eye: np.ndarray) -> float:
    """Eye aspect ratio of one eye (lid distances over corner distance)."""
    p = points[eye]
    vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
    return float(vertical / max(2.0 * np.linalg.norm(p[0] - p[3]), 1e-6))


# Closed-lid painting, in eye widths (the distance between the eye's corners).
_LID_COVER = 0.2          # the covered region: both eye polygons dilated by this
_LID_RING = 0.2           # the ring around it whose median is the skin colour
_LID_FLOOR = 0.9          # the fill is not let darker than this × the skin's brightness
_LASH_WIDTH = 0.08        # thickness of the lash line
_LASH_TONE = 0.3          # its colour: this × the lid's colour …
_LASH_OPACITY = 0.8       # … laid on at this opacity


def _closed_lid(patch: np.ndarray, region: np.ndarray, margin: np.ndarray,
                width: float) -> np.ndarray:
    """`patch` (uint8) with `region` (uint8 mask) filled as lid skin and a lash line drawn along
    `margin` (points in patch pixels): float32."""
    filled = cv2.inpaint(patch, (region > 127).astype(np.uint8), max(1.0, 0.15 * width),
                         cv2.INPAINT_TELEA).astype(np.float32)
    k = max(1, int(round(_LID_RING * width)))
    ring = cv2.subtract(cv2.dilate(region, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))), region)
    samples = patch[ring > 127]
    if len(samples):
        skin = np.median(samples.reshape(-1, patch.shape[2]), axis=0).astype(np.float32)
        floor = _LID_FLOOR * float(skin.mean())
        lift = np.clip((floor - filled.mean(axis=2, keepdims=True)) / max(floor, 1e-3), 0.0, 1.0)
        filled = filled * (1 - lift) + lift * skin
    line = np.zeros(region.shape, np.uint8)
    cv2.polylines(line, [np.round(margin * 4).astype(np.int32)], False, 255,
                  max(1, int(round(_LASH_WIDTH * width))), cv2.LINE_AA, shift=2)
    alpha = cv2.GaussianBlur(line, (0, 0), max(0.5, 0.03 * width)).astype(np.float32)
    alpha = alpha[..., None] * (_LASH_OPACITY / 255.0)
    return filled * (1 - alpha) + alpha * (_LASH_TONE * filled)


def paint_closing_eyes(frame: np.ndarray, target: np.ndarray, base: np.ndarray) -> np.ndarray:
    """A photo warped from `base` to `target` landmarks, with eyes that the target closes painted
    as closed lids.

    A warp closes an eye by squeezing it: iris, white and lashes stay visible in a thin slit. A
    closing lid covers them with skin and leaves a dark lash line where the lids meet. For each
    eye whose aspect ratio in `target` is below the photo's (closure c = 1 − EAR_target /
    EAR_photo), with weight smoothstep(c / 0.7) (0 for an eye at its rest opening, 1 from 70 %
    closure):

    * the eye region — the target's eye polygon and the photo's own eye polygon moved rigidly
      with the head (`_rest_pose`), dilated by 0.2 eye widths so that lashes and a drawn eye's
      outline are covered as well — is filled in from its surroundings (`cv2.inpaint`, Telea);
    * the fill is kept from turning darker than 0.9 × the brightness of the skin around it (the
      median of a ring 0.2 widths wide), so brows, lashes or a painting's dark outlines at the
      region's border do not smear into the lid;
    * a lash line, 0.08 widths thick, at 0.3 × the lid's colour and 80 % opacity, is drawn through
      the lid margin (the corners and the middles of the target's upper and lower lids);

    and the result is blended in with the weight, feathered by a blur of 0.08 widths. An eye
    narrower than 2 px is left alone. About 1–2 ms per closing eye at 512² on one core.

    This is what dlib's landmark predictor reads as a closed eye. The astronaut warped with its
    lids 90 % closed: the mean eye aspect ratio dlib measures falls from 0.32 at rest to 0.07,
    against 0.17 for the squeezed eye alone and for the earlier painting (the eye polygon in one
    flat skin colour); its `cv2.stylization` painting: 0.18 → 0.08 against 0.25 / 0.24.
    """
    target = np.asarray(target, np.float64)
    base = np.asarray(base, np.float64)
    h, w = frame.shape[:2]
    out = None
    rest = None
    for eye in _EYES:
        closure = 1.0 - _eye_opening(target, eye) / max(_eye_opening(base, eye), 1e-6)
        weight = float(np.clip(closure / 0.7, 0.0, 1.0))
        weight = weight * weight * (3.0 - 2.0 * weight)
        if weight < 0.05:
            continue
        polygon = target[eye]
        width = float(np.linalg.norm(polygon[3] - polygon[0]))
        if width < 2.0:
            continue
        rest = _rest_pose(base, target) if rest is None else rest
        both = np.concatenate([polygon, rest[eye]])
        x0, y0 = np.maximum(np.floor(both.min(axis=0) - 0.6 * width), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(both.max(axis=0) + 0.6 * width), [w, h]).astype(int)
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue                                       # the eye is outside the frame
        offset = np.array([x0, y0], np.float64)
        region = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for points in (polygon, rest[eye]):
            cv2.fillPoly(region, [np.round((points - offset) * 4).astype(np.int32)], 255,
                         cv2.LINE_AA, shift=2)
        k = max(1, int(round(_LID_COVER * width)))
        region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                              (2 * k + 1, 2 * k + 1)))
        margin = np.stack([polygon[0], (polygon[1] + polygon[5]) / 2,
                           (polygon[2] + polygon[4]) / 2, polygon[3]]) - offset
        out = frame.astype(np.float32) if out is None else out
        lid = _closed_lid(np.ascontiguousarray(frame[y0:y1, x0:x1]), region, margin, width)
        alpha = cv2.GaussianBlur(region, (0, 0), max(0.5, 0.08 * width)).astype(np.float32)
        alpha = np.minimum(alpha * (2.0 / 255.0), 1.0)[..., None] * weight
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - alpha) + alpha * lid
    if out is None:
        return frame
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def opening_mask(shape: tuple[int, int], target: np.ndarray, base: np.ndarray) -> np.ndarray:
    """float32 `shape` weights in [0, 1]: where a warp from `base` to `target` landmarks shows
    something other than the face would — an opening mouth (the gap `paint_mouth_gap` paints and
    both lips, the target's and the photo's moved with the head, grown by 0.1 mouth widths: the
    warp stretches the lips over the gap; weighted by smoothstep(o / 0.1), o = the inner lips'
    extra opening over the mouth width) and each closing eye (the region `paint_closing_eyes`
    covers, weighted by smoothstep(closure / 0.35): the photo's open eye is already wrong at a
    third closed). Feathered; 0 where nothing opens or closes (a face at rest, a smile the photo
    already shows). Paste-back keeps the photo's detail out of these regions."""
    target = np.asarray(target, np.float64)
    base = np.asarray(base, np.float64)
    mask = np.zeros(shape, np.float32)
    rest = _rest_pose(base, target)
    mouth_width = float(np.linalg.norm(target[54] - target[48]))
    opening = (_lip_gap(target) - _lip_gap(rest)) / max(mouth_width, 1e-6)
    weight = float(np.clip(opening / 0.1, 0.0, 1.0))
    weight = weight * weight * (3.0 - 2.0 * weight)
    if weight >= 0.02 and mouth_width >= 2.0:
        region = _mouth_gap(shape, target, base)
        for points in (target[_OUTER_LIPS], rest[_OUTER_LIPS]):
            cv2.fillPoly(region, [np.round(points * 4).astype(np.int32)], 255, cv2.LINE_AA,
                         shift=2)
        k = max(1, int(round(0.1 * mouth_width)))
        region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                              (2 * k + 1, 2 * k + 1)))
        soft = cv2.GaussianBlur(region, (0, 0), max(0.5, k / 2)) / np.float32(255)
        mask = np.maximum(mask, np.minimum(soft * 2.0, 1.0) * weight)
    for eye in _EYES:
        closure = 1.0 - _eye_opening(target, eye) / max(_eye_opening(base, eye), 1e-6)
        weight = float(np.clip(closure / 0.35, 0.0, 1.0))
        weight = weight * weight * (3.0 - 2.0 * weight)
        width = float(np.linalg.norm(target[eye][3] - target[eye][0]))
        if weight < 0.02 or width < 2.0:
            continue
        region = np.zeros(shape, np.uint8)
        for points in (target[eye], rest[eye]):
            cv2.fillPoly(region, [np.round(points * 4).astype(np.int32)], 255, cv2.LINE_AA,
                         shift=2)
        k = max(1, int(round(_LID_COVER * width)))
        region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                              (2 * k + 1, 2 * k + 1)))
        soft = cv2.GaussianBlur(region, (0, 0), max(0.5, 0.08 * width)) / np.float32(255)
        mask = np.maximum(mask, np.minimum(soft * 2.0, 1.0) * weight)
    return mask


def paint_openings(frame: np.ndarray, target: np.ndarray, base: np.ndarray) -> np.ndarray:
    """What a warp of a photo from `base` to `target` landmarks cannot show, painted in: the
    opened mouth's dark interior (`paint_mouth_gap`) and closing eyelids (`paint_closing_eyes`).
    The warp a warp-guided model is given and its fine-tuning pairs are painted with it."""
    return paint_closing_eyes(paint_mouth_gap(frame, target, base), target, base)


def _anchor_points(width: int, height: int, landmarks: np.ndarray) -> np.ndarray:
    """Fixed points that keep the warp local: the image border and a ring around the face."""
    border = [(0, 0), (width / 2, 0), (width - 1, 0), (width - 1, height / 2), (width - 1, height - 1),
              (width / 2, height - 1), (0, height - 1), (0, height / 2)]
    centre = landmarks.mean(axis=0)
    radius = 1.6 * float(np.ptp(landmarks, axis=0).max())
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    ring = np.clip(ring, 0, [width - 1, height - 1])
    return np.concatenate([np.array(border, np.float64), ring])


# Points whose layout only the head's motion changes much (upper outline, brows, nose bridge, eye
# corners): the similarity from the photo's to the target's fits where the head went.
_UPPER_FACE = np.array([0, 1, 2, 14, 15, 16, *range(17, 31), 36, 39, 42, 45])
_HEAD_RADIUS = 0.95    # the head points' distance from the landmarks' centre, in face sizes …
_HEAD_ROOM = 0.85      # … but at most this share of the way to the image's border …
_HEAD_MIN = 0.6        # … and left out when that is closer than this (they would be in the face)
# The rays: from 15° below the horizontal on one side, over the top, to 15° below on the other.
_HEAD_ANGLES = np.deg2rad(np.linspace(165.0, 375.0, 11))


def _head_points(width: int, height: int, landmarks: np.ndarray) -> np.ndarray:
    """Points on the hair and forehead around the upper face that move rigidly with the head
    (`PhotoWarper`): an arc of rays from the landmarks' centre over the top of the head, each point
    `_HEAD_RADIUS` face sizes out or `_HEAD_ROOM` of the way to the image's border if that is
    nearer (a face crop), so that the band between them and the border anchors leaves room to
    move; a ray with less room than `_HEAD_MIN` face sizes gets no point. `[N, 2]`, N ≤ 11."""
    centre = landmarks.mean(axis=0)
    size = float(np.ptp(landmarks, axis=0).max())
    rays = np.stack([np.cos(_HEAD_ANGLES), np.sin(_HEAD_ANGLES)], axis=1)
    high = np.array([width - 1, height - 1], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Distance along each ray to the border: the nearest of the two walls it heads for.
        reach = np.where(rays > 1e-9, (high - centre) / rays,
                         np.where(rays < -1e-9, -centre / rays, np.inf)).min(axis=1)
    radius = np.minimum(_HEAD_RADIUS * size, _HEAD_ROOM * reach)
    keep = radius >= _HEAD_MIN * size
    return centre + radius[keep, None] * rays[keep]


def _triangles(points: np.ndarray, width: int, height: int) -> list[tuple[int, int, int]]:
    # The subdivision's rectangle must hold every point: landmarks may lie outside the image
    # (a face cut by a crop's border in a training corpus).
    low = np.floor(np.minimum(points.min(axis=0), 0)) - 2
    high = np.ceil(np.maximum(points.max(axis=0), [width, height])) + 2
    subdiv = cv2.Subdiv2D((int(low[0]), int(low[1]), int(high[0] - low[0]),
                           int(high[1] - low[1])))
    lookup = {}
    for i, (x, y) in enumerate(points):
        subdiv.insert((float(x), float(y)))
        lookup[(round(float(x), 3), round(float(y), 3))] = i
    triangles = []
    for tri in subdiv.getTriangleList():
        idx = []
        for k in range(3):
            key = (round(float(tri[2 * k]), 3), round(float(tri[2 * k + 1]), 3))
            if key not in lookup:
                break
            idx.append(lookup[key])
        if len(idx) == 3:
            triangles.append(tuple(idx))
    return triangles


class PhotoWarper:
    """Warps one photo so that its landmarks move to new positions (piecewise affine).

    The triangulation is computed once on the photo's landmarks, head points and fixed anchors
    (the image border and a ring 1.6 face sizes around the face, `_anchor_points`), so only the
    head's region moves. The head points (`_head_points`: an arc over the hair and forehead,
    0.95 face sizes from the face's centre, or 85 % of the way to the image's border in a crop)
    follow the head rigidly: each target puts them where the similarity that takes the photo's
    upper-face landmarks (`_UPPER_FACE`) to the target's takes them. Without them
    (`head_points=False`, the plain warp) the hair and forehead lie in long triangles between the
    landmarks and the fixed ring, which a turning head shears: at a 26° turn the outline's top
    moves sideways against the brows' ends by about a quarter of the face width, and the hair
    shows a straight cut from the brow's end (`benchmarks/turn_warp.py`). Each
    `warp` is one dense backward map: every output pixel is assigned the target triangle it falls
    in (a rasterized triangle-index image), mapped through that triangle's affine transform back
    into the photo, and sampled bilinearly with `cv2.remap` (border reflected). Where target
    triangles overlap (a fold under extreme motion) the one drawn last wins. Triangles of anchors
    only are the identity, so the map is computed only on the box around the triangles with a
    landmark corner and the rest of the photo is copied. About 0.5–0.8 ms for a 128² crop, 1 ms
    for 256², 2 ms for a 512² photo and 15 ms for 1280² on one core (was 0.7 / 1.8 / 8 / 77 ms with
    a whole-image map); the runner computes the warp-guidance input of a warp-guided model with it
    on every frame, and paste-back the moved photo.
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, head_points: bool = True):
        self.image = np.asarray(image)
        h, w = self.image.shape[:2]
        self.landmarks = np.asarray(landmarks, np.float64)
        self.head = (_head_points(w, h, self.landmarks) if head_points
                     else np.zeros((0, 2), np.float64))
        self.anchors = _anchor_points(w, h, self.landmarks)
        self.source = np.concatenate([self.landmarks, self.head, self.anchors])
        self.triangles = np.asarray(_triangles(self.source, w, h), np.int64).reshape(-1, 3)
        # Triangles of anchors only map by the identity (anchors never move): only those with a
        # landmark or head-point corner can change a pixel, so a warp computes the box around
        # those and copies the rest of the photo.
        self._moving = np.any(self.triangles < len(self.landmarks) + len(self.head), axis=1)

    def targets(self, target_landmarks: np.ndarray) -> np.ndarray:
        """Where every mesh point goes for `target_landmarks` `[68, 2]`: the landmarks, the head
        points moved with the head, the anchors in place. `[P, 2]` float64."""
        target = np.asarray(target_landmarks, np.float64)
        head = self.head
        if len(head):
            head = retarget.apply_similarity(head, *retarget.fit_similarity(
                self.landmarks[_UPPER_FACE], target[_UPPER_FACE]))
        return np.concatenate([target, head, self.anchors])

    def _local_maps(self, target_landmarks: np.ndarray):
        """(x0, y0, map_x, map_y): the backward map on the box `[y0:y0+h', x0:x0+w']` of the
        output that holds every triangle with a landmark corner (outside it the map is the
        identity); None when that box is empty."""
        h, w = self.image.shape[:2]
        dst = self.targets(target_landmarks)[self.triangles]   # [T, 3, 2]
        moving = dst[self._moving].reshape(-1, 2)
        x0, y0 = np.clip(np.floor(moving.min(axis=0)).astype(int) - 1, 0, [w, h])
        x1, y1 = np.clip(np.ceil(moving.max(axis=0)).astype(int) + 2, 0, [w, h])
        if x1 <= x0 or y1 <= y0:
            return None
        src = self.source[self.triangles]
        # The affine map of each triangle from target back to source: [x y 1] @ A = [u v].
        ones = np.ones((len(dst), 3, 1))
        homogeneous = np.concatenate([dst, ones], axis=2)  # [T, 3, 3]
        det = np.linalg.det(homogeneous)
        valid = np.abs(det) > 1e-9                         # degenerate (collapsed) triangles
        affine = np.zeros((len(dst), 3, 2))
        affine[valid] = np.linalg.solve(homogeneous[valid], src[valid])
        # Pixels in no triangle keep their place: an extra identity entry, index len(dst).
        affine = np.concatenate([affine, [[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]]).astype(np.float32)
        index = np.full((y1 - y0, x1 - x0), len(dst), np.int32)
        corners = np.round(dst - [x0, y0]).astype(np.int32)
        for k in np.flatnonzero(valid):
            cv2.fillConvexPoly(index, corners[k], int(k), cv2.LINE_8)
        x = np.arange(x0, x1, dtype=np.float32)[None, :]
        y = np.arange(y0, y1, dtype=np.float32)[:, None]
        map_x = affine[index, 0, 0] * x + affine[index, 1, 0] * y + affine[index, 2, 0]
        map_y = affine[index, 0, 1] * x + affine[index, 1, 1] * y + affine[index, 2, 1]
        return x0, y0, map_x, map_y

    def warp(self, target_landmarks: np.ndarray) -> np.ndarray:
        """The photo with its landmarks moved to `target_landmarks` `[68, 2]` (same size/dtype)."""
        out = self.image.copy()
        local = self._local_maps(target_landmarks)
        if local is not None:
            x0, y0, map_x, map_y = local
            out[y0:y0 + map_x.shape[0], x0:x0 + map_x.shape[1]] = cv2.remap(
                self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        return out

    def warp_batch(self, targets: np.ndarray) -> np.ndarray:
        """`[N, 68, 2]` targets → `[N, H, W, C]` warped photos."""
        return np.stack([self.warp(t) for t in np.asarray(targets)])
