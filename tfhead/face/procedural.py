"""Procedural talking heads: synthetic identities drawn from a parametric 68-point geometry, with
exact landmarks (NumPy/OpenCV only).

`random_identity` draws a face shape, skin, hair, eyes, lips and background; `procedural_landmarks`
poses it (mouth, eyes, yaw, roll, scale); `render_face` draws it; `procedural_track` and
`procedural_clip` make talking, turning clips. A 128² frame takes ~1.5 ms, so hundreds of clips
for tests, benchmarks, the demo's corpus and distillation tracks are cheap. Nothing generated is
committed as data.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# ------------------------------------------------------------------------------------------------
# Procedural faces.

@dataclasses.dataclass(frozen=True)
class Identity:
    """Appearance and face geometry of one synthetic person (all sizes relative to face width)."""

    jaw_width: float
    chin_length: float
    eye_spacing: float
    eye_size: float
    brow_height: float
    nose_length: float
    mouth_width: float
    lip_thickness: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    background: tuple[int, int, int]
    hair_volume: float


def random_identity(seed: int) -> Identity:
    rng = np.random.default_rng(seed)
    tone = rng.uniform(0.25, 1.0)
    skin = tuple(int(v) for v in np.array([235, 190, 160]) * tone + np.array([20, 15, 10]))
    hair = tuple(int(v) for v in rng.choice(
        [[30, 20, 15], [90, 60, 30], [160, 120, 60], [200, 170, 110], [60, 60, 60], [120, 40, 20]]))
    iris = tuple(int(v) for v in rng.choice([[70, 45, 25], [60, 100, 140], [70, 110, 70], [40, 30, 20]]))
    lips = tuple(int(v) for v in np.clip(np.array(skin) * [0.85, 0.55, 0.55] + [30, 0, 0], 0, 255))
    background = tuple(int(v) for v in rng.integers(30, 225, size=3))
    return Identity(
        jaw_width=rng.uniform(0.88, 1.05), chin_length=rng.uniform(0.55, 0.7),
        eye_spacing=rng.uniform(0.36, 0.46), eye_size=rng.uniform(0.14, 0.19),
        brow_height=rng.uniform(0.13, 0.19), nose_length=rng.uniform(0.26, 0.34),
        mouth_width=rng.uniform(0.32, 0.44), lip_thickness=rng.uniform(0.035, 0.06),
        skin=skin, hair=hair, iris=iris, lips=lips, background=background,
        hair_volume=rng.uniform(0.0, 1.0))


def _arc(x0, x1, y, bulge, n):
    xs = np.linspace(x0, x1, n)
    u = np.linspace(-1, 1, n)
    return np.stack([xs, y - bulge * (1 - u ** 2)], axis=1)


def canonical_landmarks(identity: Identity, mouth_open: float = 0.0, eyes_open: float = 1.0):
    """Frontal landmarks `[68, 2]` and pseudo-depths `[68]` in face units (nose bridge top = 0,0).

    x grows to the image right, y downwards; the face is 1 unit wide at the eyes.
    """
    p = np.zeros((68, 2))
    z = pseudo_depth()
    a = 0.5 * identity.jaw_width
    phi = np.linspace(0, np.pi, 17)
    p[0:17] = np.stack([-a * np.cos(phi), 0.05 + identity.chin_length * np.sin(phi) ** 1.2], axis=1)
    s, e = identity.eye_spacing / 2, identity.eye_size
    brow_y = -identity.brow_height - 0.02
    p[17:22] = _arc(-s - 0.6 * e - 0.04, -0.07, brow_y, 0.05, 5)
    p[22:27] = _arc(0.07, s + 0.6 * e + 0.04, brow_y, 0.05, 5)
    p[27:31] = np.stack([np.zeros(4), np.linspace(0.0, identity.nose_length, 4)], axis=1)
    ny = identity.nose_length + 0.05
    p[31:36] = np.stack([np.linspace(-0.1, 0.1, 5), ny - 0.015 * np.array([0, 1, 1.5, 1, 0])], 1)
    h = 0.35 * e * eyes_open + 0.01
    for start, cx in ((36, -s), (42, s)):
        xs = cx + e * np.array([-0.5, -0.2, 0.2, 0.5, 0.2, -0.2])
        ys = np.array([0.0, -h, -h, 0.0, h * 0.8, h * 0.8])
        p[start:start + 6] = np.stack([xs, ys], axis=1)
    w, t = identity.mouth_width / 2, identity.lip_thickness
    my = identity.nose_length + 0.2
    gap = 0.12 * mouth_open
    outer_top = np.stack([np.linspace(-w, w, 7), my - t * np.array([0, 0.8, 1.1, 0.9, 1.1, 0.8, 0])], 1)
    outer_bottom = np.stack([np.linspace(w, -w, 7)[1:6],
                             my + gap + 1.2 * t * np.array([0.8, 1.1, 1.2, 1.1, 0.8])], 1)
    p[48:55], p[55:60] = outer_top, outer_bottom
    inner_w = 0.75 * w
    p[60:65] = np.stack([np.linspace(-inner_w, inner_w, 5), my - 0.2 * t * np.array([0, 1, 1, 1, 0])], 1)
    p[65:68] = np.stack([np.linspace(inner_w, -inner_w, 5)[1:4], my + gap * np.array([0.8, 1, 0.8])], 1)
    p[60, 1] = p[64, 1] = my
    return p, z


_HEAD_DEPTH = 1.1   # depth of the head in front of the jaw line, in units of its half-width


def pseudo_depth() -> np.ndarray:
    """`[68]` depths towards the viewer of a mean face's landmarks, in face widths (the width at
    the eyes; the nose bridge's top at 0.1, the jaw's ends at −0.35)."""
    z = np.zeros(68)
    z[0:17] = -0.35 + 0.35 * np.sin(np.linspace(0, np.pi, 17))
    z[17:27] = 0.1
    z[27:31] = np.linspace(0.1, 0.35, 4)
    z[31:36] = 0.22
    z[36:48] = 0.05
    z[48:68] = 0.15
    return z


def turn_x(x: np.ndarray, z: np.ndarray, yaw) -> np.ndarray:
    """x of 68 landmarks (about the face's vertical midline; depths `z` in the same unit) after the
    head turns by `yaw` radians (+: the nose goes to +x) about a vertical axis, seen from the front.

    Points turn as x·cos + z·sin, but the jaw line (0–16) is the face's outline rather than fixed
    points on it: a turned head's outline is the silhouette of its cross-section, an ellipse of
    half-width |x| and depth `_HEAD_DEPTH`·|x| centred at the jaw point's depth, whose extremes lie
    at ±|x|·√(cos² + k²·sin²) + z·sin. (Turning fixed points pulls the far side's outline inside
    the far eye from about 30°.)
    """
    x = np.asarray(x, np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    out = x * c + z * s
    out[:17] = x[:17] * np.hypot(c, _HEAD_DEPTH * s) + z[:17] * s
    return out


def procedural_landmarks(identity: Identity, size: int, mouth_open: float = 0.0,
                         eyes_open: float = 1.0, yaw: float = 0.0, roll: float = 0.0,
                         scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Image landmarks `[68, 2]` of an identity in a `size`² frame for a pose and expression."""
    p, z = canonical_landmarks(identity, mouth_open, eyes_open)
    pts = np.stack([turn_x(p[:, 0], z, yaw), p[:, 1]], axis=1) - [0.0, 0.25]
    c, s = np.cos(roll), np.sin(roll)
    pts = pts @ np.array([[c, s], [-s, c]])
    face_px = 0.42 * size * scale
    return (pts * face_px + np.array([0.5 * size, 0.5 * size]) + np.asarray(shift) * size).astype(np.float32)


def render_face(identity: Identity, landmarks: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Draws a synthetic face whose features sit exactly on `landmarks`: `[size, size, 3]` uint8 RGB."""
    rng = np.random.default_rng(seed)
    lm = np.asarray(landmarks, np.float64)
    img = np.empty((size, size, 3), np.float32)
    ramp = np.linspace(0.8, 1.15, size)[:, None, None]
    img[:] = np.clip(np.array(identity.background, np.float32) * ramp, 0, 255)
    face_w = np.linalg.norm(lm[16] - lm[0])
    centre_top = (lm[19] + lm[24]) / 2
    up = lm[27] - lm[8]
    up /= np.linalg.norm(up) + 1e-9
    angle = np.degrees(np.arctan2(up[0], -up[1]))
    # Hair behind the head, neck, face.
    hair_c = centre_top + up * 0.1 * face_w
    axes = (int(face_w * (0.62 + 0.12 * identity.hair_volume)), int(face_w * (0.62 + 0.1 * identity.hair_volume)))
    cv2.ellipse(img, tuple(np.round(hair_c).astype(int)), axes, angle, 0, 360, identity.hair, -1, cv2.LINE_AA)
    neck_w = 0.3 * face_w
    neck = np.array([lm[6] + [-0.05 * face_w, 0], lm[10] + [0.05 * face_w, 0],
                     lm[10] + [neck_w * 0.1, 0.6 * face_w], lm[6] + [-neck_w * 0.1, 0.6 * face_w]])
    skin = np.array(identity.skin, np.float32)
    cv2.fillPoly(img, [np.round(neck).astype(np.int32)], tuple(float(v) for v in skin * 0.8), cv2.LINE_AA)
    forehead_angles = np.linspace(0, np.pi, 9)
    mid = (lm[0] + lm[16]) / 2
    half = (lm[16] - lm[0]) / 2
    forehead = [mid - np.cos(a) * half + up * np.sin(a) * 0.55 * face_w for a in forehead_angles]
    face_poly = np.concatenate([lm[0:17], np.array(forehead[::-1][1:-1])])
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(face_poly).astype(np.int32)], 255, cv2.LINE_AA)
    # Shading: darker towards the face border.
    dist = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, 3)
    shade = 0.75 + 0.25 * np.clip(dist / (0.15 * face_w + 1e-6), 0, 1)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    img = img * (1 - alpha) + alpha * skin * shade[..., None]
    # Hair fringe over the forehead for some identities.
    if identity.hair_volume > 0.5:
        fringe = np.array(forehead[2:7] + [centre_top + up * 0.12 * face_w])
        cv2.fillPoly(img, [np.round(fringe).astype(np.int32)], identity.hair, cv2.LINE_AA)
    dark = tuple(float(v) * 0.5 for v in identity.hair)
    t = max(1, int(round(face_w * 0.035)))
    for brow in (lm[17:22], lm[22:27]):
        cv2.polylines(img, [np.round(brow).astype(np.int32)], False, dark, t + 1, cv2.LINE_AA)
    for eye in (lm[36:42], lm[42:48]):
        poly = np.round(eye).astype(np.int32)
        cv2.fillPoly(img, [poly], (240, 240, 235), cv2.LINE_AA)
        eye_mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(eye_mask, [poly], 1)
        iris_layer = img.copy()
        centre = eye.mean(axis=0)
        r = max(1, int(round(np.linalg.norm(eye[3] - eye[0]) * 0.28)))
        cv2.circle(iris_layer, tuple(np.round(centre).astype(int)), r, identity.iris, -1, cv2.LINE_AA)
        cv2.circle(iris_layer, tuple(np.round(centre).astype(int)), max(1, r // 2), (10, 10, 10), -1, cv2.LINE_AA)
        img = np.where(eye_mask[..., None] > 0, iris_layer, img)
        cv2.polylines(img, [poly], True, (40, 30, 30), max(1, t // 2), cv2.LINE_AA)
    nose_dark = tuple(float(v) for v in skin * 0.6)
    cv2.polylines(img, [np.round(lm[27:31]).astype(np.int32)], False, tuple(float(v) for v in skin * 0.85),
                  t, cv2.LINE_AA)
    cv2.polylines(img, [np.round(lm[31:36]).astype(np.int32)], False, nose_dark, t, cv2.LINE_AA)
    cv2.fillPoly(img, [np.round(lm[48:60]).astype(np.int32)], identity.lips, cv2.LINE_AA)
    inner = np.round(lm[60:68]).astype(np.int32)
    cv2.fillPoly(img, [inner], (50, 20, 25), cv2.LINE_AA)
    cv2.polylines(img, [inner], True, tuple(float(v) * 0.6 for v in identity.lips), max(1, t // 2), cv2.LINE_AA)
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    return np.clip(img, 0, 255).astype(np.uint8)


def procedural_track(identity: Identity, num_frames: int, size: int, seed: int,
                     fps: float = 25.0) -> np.ndarray:
    """Landmarks `[T, 68, 2]` of a synthetic person talking in a `size`² frame: mouth, blinks,
    yaw, roll, scale and drift (the motion of `procedural_clip`, without drawing the faces)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    ph = rng.uniform(0, 2 * np.pi, 6)
    mouth = 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(0.7, 1.5) * t + ph[0]))
    period = rng.uniform(2.0, 4.0)
    eyes = 1 - 0.9 * np.clip(1 - np.abs(((t + ph[1]) % period) - 0.15) / 0.12, 0, 1)
    tracks = []
    for i in range(num_frames):
        tracks.append(procedural_landmarks(
            identity, size, mouth_open=mouth[i], eyes_open=eyes[i],
            yaw=0.25 * np.sin(2 * np.pi * 0.3 * t[i] + ph[2]),
            roll=np.deg2rad(6) * np.sin(2 * np.pi * 0.2 * t[i] + ph[3]),
            scale=1 + 0.06 * np.sin(2 * np.pi * 0.15 * t[i] + ph[4]),
            shift=(0.03 * np.sin(2 * np.pi * 0.1 * t[i] + ph[5]), 0.02 * np.cos(2 * np.pi * 0.12 * t[i]))))
    return np.stack(tracks)


def procedural_clip(identity: Identity, num_frames: int, size: int, seed: int, fps: float = 25.0):
    """A talking-head clip of a synthetic person: (frames `[T, S, S, 3]` uint8 RGB, landmarks `[T, 68, 2]`)."""
    tracks = procedural_track(identity, num_frames, size, seed, fps)
    frames = [render_face(identity, lm, size, seed=seed * 100003 + i) for i, lm in enumerate(tracks)]
    return np.stack(frames), tracks
