"""Paste-back: the generated face crop shown in the source photo, at the photo's resolution.

The person model renders an R × R crop (the training crop rule, `tfhead.face.crop`) from a landmark
image. `PasteBack` puts each generated crop back into the person's source photo and moves the photo
with the head, so that the output is a full-resolution frame:

1. **The photo around the face.** `background="warp"` (default): the whole photo warped
   piecewise-affinely so that its landmarks go where the frame's target landmarks (mapped into
   photo pixels) put them (`tfhead.face.motion.PhotoWarper`, the warp baseline itself). It is the
   same geometry as the warp a warp-guided model is given, so the generated face and the photo
   around it meet without a seam (with `"rigid"`, a yawing face inside a rigidly moved head showed
   a cut through the hair at the mask's border), and the head's outline, hair and neck follow
   expression and turns, not only the rigid motion. With `background="rigid"`:

   **Head motion.** The similarity (scale, rotation, translation) from the source's reference crop
   landmarks to the frame's target crop landmarks is fitted on `retarget.RIGID_POINTS`
   (`retarget.fit_similarity`) and conjugated by the crop transform into photo pixels
   (M_photo = C⁻¹ · M_crop · C). The photo is moved by it (`cv2.warpAffine`, border
   replicated).
   `background_motion` sets how much of the photo follows:

   * 1.0 (default): the whole photo moves rigidly with the head. Hair, neck, shoulders and
     background stay attached to the face, with no distortion and no ghost of the source's face;
     the price is that the whole scene sways with the head and, at the frame edges, the border is
     replicated (smeared stripes as wide as the motion).
   * 0.0: the background stays put; only a head region (a disc around the crop box, the face at
     full motion, fading smoothly to no motion at ~0.9 box sizes) moves, through a smooth
     displacement field (`cv2.remap`). The scene is stable and the frame edges are untouched, but
     the band around the head is stretched (straight background lines near the head bend), more so
     the larger the motion.
   * In between: the background moves by that fraction of the head's displacement, the head region
     still fully.

2. **Soft mask** from the target landmarks, in crop pixels: the convex hull of the jaw (0–16), the
   brows (17–26) and the brows moved "up" (from the chin towards the brows, so it follows head
   roll) by `forehead` × the face height (chin to brow centre), which covers the forehead the
   landmarks do not reach. With `cover_source` (default) the hull of the source's reference
   landmarks as moved by the head motion is added, so that where the target face shrinks (mouth
   closing, a blink of the jaw line) the photo's own moved chin cannot show as a double contour.
   The border is feathered by a signed-distance falloff (two distance transforms, smoothstep) of
   width `feather` × the face height, centred on the hull: 0.5 on the hull, 1 at half a width
   inside, exactly 0 from half a width outside. The mask is tapered to 0 at the crop's edge and
   mapped into the photo by the crop transform's inverse; it is exactly 0 outside the crop box.

3. **Colour matching.** In a ring just inside the mask border (signed distance 0 … one feather
   width inside) the generated crop and the moved photo are compared at the same points; the
   generated crop gets the per-channel mean/std transfer in CIE Lab (std ratio clamped to
   [`1/MAX_STD_GAIN`, `MAX_STD_GAIN`]) that makes its ring statistics equal the photo's. Then the
   two are alpha-blended.

4. **Detail from the photo** (`detail`, on by default). The model renders R × R pixels; a face
   that covers more photo pixels than that would show upscaled — softer than the hair and
   background around it. The moved photo (step 1) has the detail, so its high frequencies are
   added back where the generated face agrees with it: detail = moved photo − the moved photo
   taken down to the crop (as the model's inputs are made, `crop.CropTransform.crop_image`) and
   up again (as the face is); gate = 1 where the colour-matched face and the photo's crop differ
   by ≤ `DETAIL_AGREE` grey levels (luminance, blurred over a crop pixel), 0 from
   `DETAIL_DISAGREE` up, linear between. Where the model changes what the photo shows — an
   opened mouth's interior, a closing eyelid, a turn the warp folds — the gate is 0 and the face
   stays the model's; where it agrees, the photo's pores, lashes and hair strands come through.
   The regions where the warp cannot show the face — an opening mouth (its gap and the lips
   stretched over it) and closing eyes (`motion.opening_mask`) — get no detail at all, so the
   photo's stretched lips or squeezed open eye cannot print through the model's mouth or closed
   lid where the gate alone would let some of it in.
   Skipped when the crop has at least the photo's resolution there (nothing to add).

Exactness: when the target equals the reference (zero motion; with `"rigid"`, also an
expression-only change) no warp is done; where the mask is 0 the output is then the photo byte for
byte. The blend is computed only inside the crop
box's rectangle; every other pixel is copied.

Crop boxes that extend past the photo's border (faces near the edge): the model's crop replicated
the photo's border there; pasting back simply drops the part of the crop that falls outside the
photo (the blend rectangle is the crop box clipped to the photo), and colour-matching samples that
fall outside the photo are ignored.

Imports only NumPy and OpenCV (no TensorFlow): the on-device runner uses this module.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfhead.face import crop as crop_lib
from tfhead.face import motion, retarget

JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
COLOUR_MATCH_MODES = ("lab", "none")
BACKGROUND_MODES = ("warp", "rigid")
MAX_STD_GAIN = 1.5
# Motion below this many photo pixels (at any photo corner) counts as none: the photo is not warped.
IDENTITY_TOLERANCE_PX = 1e-3
# Head region for background_motion < 1: full motion within HEAD_INNER box sizes of the (moved)
# crop box centre, none beyond HEAD_OUTER box sizes.
HEAD_INNER = 0.5
HEAD_OUTER = 0.9
_MIN_RING_SAMPLES = 32
_MAX_RING_SAMPLES = 4096
_EDGE_TAPER = 0.04  # fraction of R over which the crop mask fades to 0 at the crop edge
# Detail gate (grey levels of 255, luminance): the photo's detail is added in full where the
# generated face and the photo's crop differ by at most DETAIL_AGREE, not at all from
# DETAIL_DISAGREE up.
DETAIL_AGREE = 10.0
DETAIL_DISAGREE = 28.0
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _to3x3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])


def _face_height(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[BROWS].mean(0) - points[8]))


class PasteBack:
    """Pastes generated crops of one person back into the person's source photo.

    Args:
      photo: The source photo, RGB uint8 `[H, W, 3]` (any size).
      landmarks: The source's landmarks `[68, 2]` in photo pixels (those the person was made from).
      resolution: The model's crop side R.
      background: "warp" (the photo warped piecewise-affinely to the target landmarks) or
        "rigid" (moved by the head's similarity, per `background_motion`).
      background_motion: With "rigid": 1.0 = the photo moves rigidly with the head; 0.0 = the
        background stays, only the head region moves (see the module docstring).
      forehead: How far above the brows the mask reaches, as a fraction of the face height.
      feather: Width of the mask's soft border, as a fraction of the face height.
      colour_match: "lab" (mean/std transfer in Lab from the seam ring) or "none".
      cover_source: Add the moved source face hull to the mask (no double chin when the target face
        is smaller than the source's).
      detail: How much of the moved photo's high frequencies to add to the face where the face
        agrees with the photo (0 = off, 1 = all; see the module docstring).

    Attributes:
      transform: The `crop.CropTransform` the person's crops were made with.
      reference_landmarks: The source's landmarks in crop pixels `[68, 2]` float32 (the zero-motion
        target).
    """

    def __init__(self, photo: np.ndarray, landmarks: np.ndarray, resolution: int, *,
                 background: str = "warp", background_motion: float = 1.0, forehead: float = 0.3, feather: float = 0.12,
                 colour_match: str = "lab", cover_source: bool = True, detail: float = 1.0):
        photo = np.asarray(photo)
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise ValueError(f"The photo must be RGB uint8 [H, W, 3], got {photo.dtype} "
                             f"{photo.shape}.")
        points = np.asarray(landmarks, np.float64)
        if points.shape != (68, 2) or not np.isfinite(points).all():
            raise ValueError(f"The landmarks must be finite [68, 2], got {points.shape}.")
        if int(resolution) != resolution or resolution < 16:
            raise ValueError(f"The resolution must be an integer >= 16, got {resolution}.")
        if not 0.0 <= background_motion <= 1.0:
            raise ValueError(f"background_motion must be in [0, 1], got {background_motion}.")
        if forehead < 0 or feather <= 0:
            raise ValueError(f"forehead must be >= 0 and feather > 0, got {forehead}, {feather}.")
        if not 0.0 <= detail <= 1.0:
            raise ValueError(f"detail must be in [0, 1], got {detail}.")
        if background not in BACKGROUND_MODES:
            raise ValueError(f"Unknown background {background!r}; valid: {list(BACKGROUND_MODES)}.")
        if colour_match not in COLOUR_MATCH_MODES:
            raise ValueError(f"Unknown colour_match {colour_match!r}; valid: "
                             f"{list(COLOUR_MATCH_MODES)}.")
        self.photo = np.ascontiguousarray(photo).copy()
        self.photo.setflags(write=False)
        self.height, self.width = photo.shape[:2]
        self.resolution = int(resolution)
        self.background, self.background_motion = background, float(background_motion)
        self._warper = None  # motion.PhotoWarper of the photo, built on first use
        self.forehead, self.feather = float(forehead), float(feather)
        self.colour_match, self.cover_source = colour_match, bool(cover_source)
        self.detail = float(detail)

        # Exactly the crop of tfhead.face.shots._crop_one (person shots).
        self.transform = crop_lib.CropTransform(crop_lib.crop_box(points), self.resolution)
        self.reference_landmarks = self.transform.to_crop(points)
        self._reference = self.reference_landmarks.astype(np.float64)
        self._to_crop = _to3x3(self.transform.matrix)
        self._to_photo = _to3x3(self.transform.inverse_matrix)

        box = self.transform.box
        half = box.size / 2.0
        self._roi = (int(np.clip(np.floor(box.cx - half), 0, self.width)),
                     int(np.clip(np.floor(box.cy - half), 0, self.height)),
                     int(np.clip(np.ceil(box.cx + half) + 1, 0, self.width)),
                     int(np.clip(np.ceil(box.cy + half) + 1, 0, self.height)))
        x0, y0, _, _ = self._roi
        shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
        self._crop_to_roi = (shift @ self._to_photo)[:2]
        # Photo ROI → crop, as crop_image makes the model's inputs (for the detail layer).
        self._roi_to_crop = (_to3x3(self.transform.matrix) @ np.linalg.inv(shift))[:2]
        # Crop → photo shrinks by more than 2×: area-average the crop first (as crop_image does).
        back_scale = box.size / self.resolution
        self._has_detail = back_scale > 1.0
        self._shrunk_side = None
        if back_scale < 0.5:
            n = max(1, int(round(self.resolution * back_scale)))
            f = self.resolution / n
            small_to_crop = np.array([[f, 0.0, 0.5 * f - 0.5], [0.0, f, 0.5 * f - 0.5],
                                      [0.0, 0.0, 1.0]])
            self._shrunk_side = n
            self._small_to_roi = (shift @ self._to_photo @ small_to_crop)[:2]

        r = self.resolution
        edge = np.minimum(np.arange(r), np.arange(r)[::-1]).astype(np.float32)
        ramp = _smoothstep(edge / max(1.0, _EDGE_TAPER * r))
        self._edge_taper = np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)
        self._grid = None  # photo pixel grid, built on first use with background_motion < 1
        self._corners = np.array([[0, 0], [self.width - 1, 0], [0, self.height - 1],
                                  [self.width - 1, self.height - 1]], np.float64)

    # ---------------------------------------------------------------------------------------------
    # Geometry.

    def crop_motion(self, target_landmarks_crop: np.ndarray) -> np.ndarray:
        """The head motion in crop pixels: 2×3 similarity reference → target (rigid points)."""
        target = self._check_landmarks(target_landmarks_crop)
        scale, rotation, translation = retarget.fit_similarity(
            self._reference[retarget.RIGID_POINTS], target[retarget.RIGID_POINTS])
        return np.hstack([scale * rotation, translation[:, None]])

    def head_motion(self, target_landmarks_crop: np.ndarray) -> np.ndarray:
        """The head motion in photo pixels: 2×3 similarity, source photo → moved photo."""
        return self._photo_motion(self.crop_motion(target_landmarks_crop))

    def _photo_motion(self, crop_motion: np.ndarray) -> np.ndarray:
        return (self._to_photo @ _to3x3(crop_motion) @ self._to_crop)[:2]

    def is_identity(self, photo_motion: np.ndarray) -> bool:
        moved = self._corners @ photo_motion[:, :2].T + photo_motion[:, 2]
        return bool(np.abs(moved - self._corners).max() < IDENTITY_TOLERANCE_PX)

    def moved_photo(self, photo_motion: np.ndarray) -> np.ndarray:
        """The photo moved by the head motion (2×3, photo pixels), per `background_motion`.

        Returns the photo itself (read-only, not a copy) when the motion is the identity.
        """
        if self.is_identity(photo_motion):
            return self.photo
        size = (self.width, self.height)
        if self.background_motion >= 1.0:
            return cv2.warpAffine(self.photo, photo_motion, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        if self._grid is None:
            self._grid = np.meshgrid(np.arange(self.width, dtype=np.float32),
                                     np.arange(self.height, dtype=np.float32))
        xs, ys = self._grid
        inverse = cv2.invertAffineTransform(photo_motion).astype(np.float32)
        # Backward map: y ↦ y + w(y) · (M⁻¹y − y), w = 1 on the head, background_motion far away.
        dx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2] - xs
        dy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2] - ys
        box = self.transform.box
        centre = photo_motion[:, :2] @ np.array([box.cx, box.cy]) + photo_motion[:, 2]
        scale = float(np.sqrt(abs(np.linalg.det(photo_motion[:, :2]))))
        inner, outer = HEAD_INNER * box.size * scale, HEAD_OUTER * box.size * scale
        distance = np.sqrt((xs - np.float32(centre[0])) ** 2 + (ys - np.float32(centre[1])) ** 2)
        head = _smoothstep((outer - distance) / (outer - inner)).astype(np.float32)
        b = np.float32(self.background_motion)
        weight = b + (np.float32(1.0) - b) * head
        return cv2.remap(self.photo, xs + weight * dx, ys + weight * dy, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def warped_photo(self, target_landmarks_crop: np.ndarray) -> np.ndarray:
        """The photo warped so that its landmarks go to the target's (crop pixels, mapped into
        the photo). Returns the photo itself (read-only) when the target is the reference."""
        target = self._check_landmarks(target_landmarks_crop)
        if np.abs(target - self._reference).max() < 1e-6:
            return self.photo
        if self._warper is None:
            self._warper = motion.PhotoWarper(self.photo, self.transform.from_crop(self._reference))
        return self._warper.warp(self.transform.from_crop(target))

    # ---------------------------------------------------------------------------------------------
    # Mask.

    def _hull(self, points: np.ndarray) -> np.ndarray:
        brows = points[BROWS]
        up = brows.mean(0) - points[8]
        height = float(np.linalg.norm(up))
        up = up / max(height, 1e-6)
        return np.concatenate([points[JAW], brows, brows + self.forehead * height * up])

    def crop_mask(self, target_landmarks_crop: np.ndarray,
                  crop_motion: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(alpha `[R, R]` float32 in [0, 1], signed distance to the hull border `[R, R]` in crop
        pixels, positive inside) for one frame's target landmarks (crop pixels)."""
        target = self._check_landmarks(target_landmarks_crop)
        r = self.resolution
        polygons = [self._hull(target)]
        if self.cover_source:
            if crop_motion is None:
                crop_motion = self.crop_motion(target)
            moved = self._reference @ crop_motion[:, :2].T + crop_motion[:, 2]
            if np.abs(moved - target).max() > 1e-3:
                polygons.append(self._hull(moved))
        inside = np.zeros((r, r), np.uint8)
        for polygon in polygons:
            hull = cv2.convexHull(np.round(polygon * 16).astype(np.int32))
            cv2.fillConvexPoly(inside, hull, 1, lineType=cv2.LINE_8, shift=4)
        signed = (cv2.distanceTransform(inside, cv2.DIST_L2, 5)
                  - cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5))
        width = max(1.0, self.feather * _face_height(target))
        alpha = _smoothstep(signed / np.float32(width) + np.float32(0.5)).astype(np.float32)
        return alpha * self._edge_taper, signed

    # ---------------------------------------------------------------------------------------------
    # Colour.

    def _colour_matched(self, generated: np.ndarray, signed: np.ndarray, width: float,
                        background: np.ndarray) -> np.ndarray:
        """The generated crop as float32 RGB in [0, 255], colour-matched in the seam ring."""
        rgb = generated.astype(np.float32)
        if self.colour_match == "none":
            return rgb
        ring = np.flatnonzero(((signed >= 0) & (signed <= width)).ravel())
        if len(ring) > _MAX_RING_SAMPLES:
            ring = ring[::int(np.ceil(len(ring) / _MAX_RING_SAMPLES))]
        r = self.resolution
        crop_points = np.stack([ring % r, ring // r], axis=1).astype(np.float64)
        photo_points = crop_points @ self._to_photo[:2, :2].T + self._to_photo[:2, 2]
        keep = np.all((photo_points >= 0)
                      & (photo_points <= [self.width - 1, self.height - 1]), axis=1)
        if keep.sum() < _MIN_RING_SAMPLES:
            return rgb
        ring, photo_points = ring[keep], photo_points[keep].astype(np.float32)
        seen = cv2.remap(background, photo_points[:, :1].copy(), photo_points[:, 1:].copy(),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # [N, 1, 3]
        made = generated.reshape(-1, 1, 3)[ring]
        seen_lab = cv2.cvtColor(seen.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
        made_lab = cv2.cvtColor(made.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
        mean_seen, mean_made = seen_lab.mean(0), made_lab.mean(0)
        gain = np.clip(seen_lab.std(0) / np.maximum(made_lab.std(0), 1e-3),
                       1.0 / MAX_STD_GAIN, MAX_STD_GAIN).astype(np.float32)
        # Only the mask's bounding rectangle (2 px wider for the bilinear paste) is ever shown.
        x, y, w, h = cv2.boundingRect((signed > -width).astype(np.uint8))
        x0, y0, x1, y1 = max(0, x - 2), max(0, y - 2), min(r, x + w + 2), min(r, y + h + 2)
        lab = cv2.cvtColor(rgb[y0:y1, x0:x1] * np.float32(1.0 / 255.0), cv2.COLOR_RGB2Lab)
        lab = (lab - mean_made.astype(np.float32)) * gain + mean_seen.astype(np.float32)
        lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
        out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        rgb[y0:y1, x0:x1] = np.clip(out * np.float32(255.0), 0.0, 255.0)
        return rgb

    # ---------------------------------------------------------------------------------------------
    # The frame.

    def compose(self, generated_crop: np.ndarray, target_landmarks_crop: np.ndarray,
                return_mask: bool = False):
        """One output frame `[H, W, 3]` uint8 at the photo's size.

        Args:
          generated_crop: The model's output `[R, R, 3]` RGB uint8.
          target_landmarks_crop: The landmarks the frame was generated from, `[68, 2]` crop pixels.
          return_mask: Also return the blend mask `[H, W]` float32 in [0, 1] (photo pixels).
        Returns:
          frame, or (frame, mask) with `return_mask`.
        """
        generated = np.asarray(generated_crop)
        r = self.resolution
        if generated.shape != (r, r, 3) or generated.dtype != np.uint8:
            raise ValueError(f"The generated crop must be uint8 [{r}, {r}, 3], got "
                             f"{generated.dtype} {generated.shape}.")
        target = self._check_landmarks(target_landmarks_crop)
        crop_motion = self.crop_motion(target)
        if self.background == "warp":
            background = self.warped_photo(target)
        else:
            background = self.moved_photo(self._photo_motion(crop_motion))
        alpha, signed = self.crop_mask(target, crop_motion)
        width = max(1.0, self.feather * _face_height(target))
        face = self._colour_matched(generated, signed, width, background)

        x0, y0, x1, y1 = self._roi
        size = (x1 - x0, y1 - y0)
        out = background.copy()
        mask = np.zeros((self.height, self.width), np.float32) if return_mask else None
        if size[0] > 0 and size[1] > 0:
            if self._shrunk_side is not None:
                small = cv2.resize(face, (self._shrunk_side, self._shrunk_side),
                                   interpolation=cv2.INTER_AREA)
                face_roi = cv2.warpAffine(small, self._small_to_roi, size, flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE)
            else:
                face_roi = cv2.warpAffine(face, self._crop_to_roi, size, flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE)
            alpha_roi = cv2.warpAffine(alpha, self._crop_to_roi, size, flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            alpha_roi = np.clip(alpha_roi, 0.0, 1.0)
            back_roi = background[y0:y1, x0:x1].astype(np.float32)
            if self.detail > 0.0 and self._has_detail and self._shrunk_side is None:
                face_roi = self._with_detail(face, face_roi, back_roi, size, target)
            blended = back_roi + alpha_roi[..., None] * (face_roi - back_roi)
            out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
            if mask is not None:
                mask[y0:y1, x0:x1] = alpha_roi
        return (out, mask) if return_mask else out

    def _with_detail(self, face: np.ndarray, face_roi: np.ndarray, back_roi: np.ndarray,
                     size: tuple[int, int], target: np.ndarray) -> np.ndarray:
        """`face_roi` plus the high frequencies of `back_roi` (the moved photo's ROI, float32)
        where the face agrees with it, outside the mouth gap and closing eyes (module
        docstring, step 4). `face`: the colour-matched crop `[R, R, 3]` float32; `target`: the
        frame's landmarks in crop pixels."""
        r = self.resolution
        back_crop = crop_lib.shrink_warp(back_roi, self._roi_to_crop,
                                         r / self.transform.box.size, r)
        back_low = cv2.warpAffine(back_crop, self._crop_to_roi, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        difference = np.abs((face - back_crop) @ _LUMA)
        difference = cv2.GaussianBlur(difference, (0, 0), 1.0)
        gate = np.clip((DETAIL_DISAGREE - difference) / (DETAIL_DISAGREE - DETAIL_AGREE), 0.0, 1.0)
        gate = gate * (1.0 - motion.opening_mask((r, r), target, self._reference))
        gate_roi = cv2.warpAffine(gate.astype(np.float32) * np.float32(self.detail),
                                  self._crop_to_roi, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return face_roi + gate_roi[..., None] * (back_roi - back_low)

    def _check_landmarks(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float64)
        if points.shape != (68, 2) or not np.isfinite(points).all():
            raise ValueError(f"Target landmarks must be finite [68, 2] (crop pixels), got "
                             f"{points.shape}.")
        return points
